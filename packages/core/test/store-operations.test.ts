import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AlreadyExistsError,
  InvalidRequestError,
  NotFoundInStoreError,
  openStore,
  type SqlStore,
} from '../src/index.js';
import { tempStores } from './support/store.js';

const { dataDir, open } = tempStores('vmpt-store-ops-');

/** A clock that moves a second per reading: order by time is then deterministic. */
function ticking(): () => Date {
  let t = Date.parse('2026-03-01T00:00:00.000Z');
  return () => {
    t += 1000;
    return new Date(t);
  };
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe('operations', () => {
  it('creates pending operations with sortable ULIDs, or the id the caller brings', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const a = await store.operations.create({ kind: 'install', request: { name: 'web' }, provider: 'lab' });
    const b = await store.operations.create({ kind: 'start', request: {} });
    assert.match(a.id, ULID);
    assert.ok(a.id < b.id, 'ids sort in creation order');
    assert.equal(a.status, 'pending');
    assert.equal(a.cancelRequested, false);
    assert.equal(a.provider, 'lab');
    assert.ok(!('instanceId' in a));
    assert.deepEqual(await store.operations.get(a.id), a);
    const c = await store.operations.create({ id: 'caller-id', kind: 'install', request: {}, instanceId: 'i-1' });
    assert.equal(c.id, 'caller-id');
    assert.equal(c.instanceId, 'i-1');
    await assert.rejects(store.operations.create({ id: 'caller-id', kind: 'x', request: {} }), AlreadyExistsError);
    await assert.rejects(store.operations.create({ kind: 'x', request: [] as never }), InvalidRequestError);
    assert.equal(await store.operations.get('nope'), undefined);
  });

  it('lists newest first, by status and instance, with a limit', async (t) => {
    const store = await open(t, { file: ':memory:', now: ticking() });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const op = await store.operations.create({ kind: 'k', request: { i }, instanceId: i % 2 ? 'odd' : 'even' });
      ids.push(op.id);
    }
    await store.operations.update(ids[0]!, { status: 'succeeded' });
    const list = async (f: Parameters<SqlStore['operations']['list']>[0]) =>
      (await store.operations.list(f)).map((o) => o.id);
    assert.deepEqual(await list({}), [...ids].reverse());
    assert.deepEqual(await list({ status: 'succeeded' }), [ids[0]]);
    assert.deepEqual(await list({ instanceId: 'odd' }), [ids[3], ids[1]]);
    assert.deepEqual(await list({ limit: 2 }), [ids[3], ids[2]]);
    await assert.rejects(store.operations.list({ limit: 0 }), InvalidRequestError);
  });

  it('gives the unfinished ones, pending and running, oldest first', async (t) => {
    const store = await open(t, { file: ':memory:', now: ticking() });
    const statuses = ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'running'] as const;
    const ids: string[] = [];
    for (const status of statuses) {
      const op = await store.operations.create({ kind: 'k', request: {} });
      await store.operations.update(op.id, { status });
      ids.push(op.id);
    }
    assert.deepEqual(
      (await store.operations.unfinished()).map((o) => o.id),
      [ids[0], ids[1], ids[6]],
    );
  });

  it('updates status, error, result and end; undefined clears', async (t) => {
    const store = await open(t, { file: ':memory:', now: ticking() });
    const op = await store.operations.create({ kind: 'install', request: {} });
    const ended = await store.operations.update(op.id, {
      status: 'failed',
      error: { code: 'exhausted', message: 'no VMID' },
      result: { vmid: 105 },
      endedAt: '2026-03-01T01:00:00.000Z',
      instanceId: 'i-1',
    });
    assert.equal(ended?.status, 'failed');
    assert.deepEqual(ended?.error, { code: 'exhausted', message: 'no VMID' });
    assert.deepEqual(ended?.result, { vmid: 105 });
    assert.equal(ended?.endedAt, '2026-03-01T01:00:00.000Z');
    assert.ok(ended && ended.updatedAt > op.updatedAt);
    const cleared = await store.operations.update(op.id, { error: undefined, status: undefined });
    assert.equal(cleared?.status, 'failed');
    assert.ok(cleared && !('error' in cleared));
    assert.equal(cleared?.instanceId, 'i-1');
    await assert.rejects(store.operations.update(op.id, { status: 'exploded' as never }), InvalidRequestError);
    assert.equal(await store.operations.update('gone', { status: 'running' }), undefined);
  });

  it('records a cancel request', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const op = await store.operations.create({ kind: 'install', request: {} });
    assert.equal((await store.operations.requestCancel(op.id))?.cancelRequested, true);
    assert.equal((await store.operations.get(op.id))?.cancelRequested, true);
    assert.equal(await store.operations.requestCancel('gone'), undefined);
  });
});

describe('the journal', () => {
  it('numbers events from 1 per operation and reads them back in order, after a seq', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const a = await store.operations.create({ kind: 'install', request: {} });
    const b = await store.operations.create({ kind: 'install', request: {} });
    const e1 = await store.operations.appendEvent(a.id, { step: 'one', status: 'processing', message: '[*] one' });
    await store.operations.appendEvent(b.id, { step: 'other', status: 'info', message: 'b' });
    const e2 = await store.operations.appendEvent(a.id, {
      step: 'one',
      status: 'success',
      message: '[+] one (1.2s)',
      elapsed: 1.25,
      vmId: 105,
      ip: '127.77.0.105',
    });
    const e3 = await store.operations.appendEvent(a.id, { step: 'two', status: 'error', message: 'no' });
    assert.deepEqual([e1.seq, e2.seq, e3.seq], [1, 2, 3]);
    assert.equal(e2.elapsed, 1.25);
    assert.equal(e2.vmId, 105);
    assert.equal(e2.ip, '127.77.0.105');
    assert.ok(!('vmId' in e1));
    assert.deepEqual(await store.operations.events(a.id), [e1, e2, e3]);
    assert.deepEqual(await store.operations.events(a.id, 1), [e2, e3]);
    assert.deepEqual(await store.operations.events(a.id, 3), []);
    assert.deepEqual(
      (await store.operations.events(b.id)).map((e) => e.seq),
      [1],
    );
  });

  it('refuses an event for no operation, or with a status SSE does not know', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await assert.rejects(
      store.operations.appendEvent('gone', { step: 's', status: 'info', message: 'm' }),
      NotFoundInStoreError,
    );
    const op = await store.operations.create({ kind: 'k', request: {} });
    await assert.rejects(
      store.operations.appendEvent(op.id, { step: 's', status: 'done' as never, message: 'm' }),
      InvalidRequestError,
    );
  });

  it('never gives one seq twice to concurrent appenders, across two stores on one file', async (t) => {
    const dir = dataDir();
    const a = await open(t, { dataDir: dir });
    const b = await open(t, { dataDir: dir });
    const op = await a.operations.create({ kind: 'install', request: {} });
    const written = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 ? a : b).operations.appendEvent(op.id, { step: 's', status: 'processing', message: `m${i}` }),
      ),
    );
    const seqs = written.map((e) => e.seq).sort((x, y) => x - y);
    assert.deepEqual(
      seqs,
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    const read = await b.operations.events(op.id);
    assert.deepEqual(
      read.map((e) => e.seq),
      seqs,
    );
    assert.equal(new Set(read.map((e) => e.message)).size, 100);
  });
});

describe('the undo log', () => {
  it('numbers intents per operation and gives them newest first', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const op = await store.operations.create({ kind: 'install', request: {} });
    const other = await store.operations.create({ kind: 'install', request: {} });
    const first = await store.undo.push(op.id, 'proxmox.destroy', { vmid: 105 });
    const o = await store.undo.push(other.id, 'core.release', { owner: other.id });
    const second = await store.undo.push(op.id, 'core.release', { owner: op.id });
    assert.deepEqual([first.seq, second.seq, o.seq], [1, 2, 1]);
    assert.equal(new Set([first.id, second.id, o.id]).size, 3);
    assert.deepEqual(await store.undo.pending(op.id), [second, first]);
  });

  it('updates, removes (twice is fine) and clears', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const op = await store.operations.create({ kind: 'install', request: {} });
    const a = await store.undo.push(op.id, 'k', { step: 1 });
    const b = await store.undo.push(op.id, 'k', { step: 2 });
    await store.undo.update(a.id, { step: 1, vmid: 105 });
    assert.deepEqual((await store.undo.pending(op.id)).at(-1)?.payload, { step: 1, vmid: 105 });
    await store.undo.remove(b.id);
    await store.undo.remove(b.id);
    assert.deepEqual(
      (await store.undo.pending(op.id)).map((i) => i.id),
      [a.id],
    );
    await assert.rejects(store.undo.update(b.id, {}), NotFoundInStoreError);
    assert.equal(await store.undo.clear(op.id), 1);
    assert.deepEqual(await store.undo.pending(op.id), []);
  });

  it('never hands a removed id out again, and refuses an intent for no operation', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const op = await store.operations.create({ kind: 'install', request: {} });
    const a = await store.undo.push(op.id, 'k', {});
    await store.undo.remove(a.id);
    const b = await store.undo.push(op.id, 'k', {});
    assert.ok(b.id > a.id);
    assert.equal(b.seq, 2);
    await assert.rejects(store.undo.push('gone', 'k', {}), NotFoundInStoreError);
    await assert.rejects(store.undo.push(op.id, 'k', { big: 1n }), InvalidRequestError);
  });

  it('survives a re-open (what recovery reads after a crash)', async () => {
    const dir = dataDir();
    const first = await openStore({ dataDir: dir });
    const op = await first.operations.create({ kind: 'install', request: {} });
    await first.operations.update(op.id, { status: 'running' });
    await first.undo.push(op.id, 'proxmox.destroy', { vmid: 105 });
    await first.operations.appendEvent(op.id, { step: 's', status: 'processing', message: 'm' });
    await first.close();
    const second = await openStore({ dataDir: dir });
    try {
      assert.deepEqual(
        (await second.operations.unfinished()).map((o) => o.id),
        [op.id],
      );
      assert.deepEqual(
        (await second.undo.pending(op.id)).map((i) => i.payload),
        [{ vmid: 105 }],
      );
      const next = await second.operations.appendEvent(op.id, { step: 'recovery', status: 'error', message: 'x' });
      assert.equal(next.seq, 2);
    } finally {
      await second.close();
    }
  });
});

describe('idempotency keys', () => {
  it('answers new, then existing for the same body and conflict for another, per scope', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const claim = (scope: string, bodyHash: string, operationId: string) =>
      store.idempotency.claim({ key: 'k1', scope, bodyHash, operationId });
    assert.deepEqual(await claim('POST /v1/instances', 'h1', 'op-1'), { kind: 'new' });
    assert.deepEqual(await claim('POST /v1/instances', 'h1', 'op-2'), { kind: 'existing', operationId: 'op-1' });
    assert.deepEqual(await claim('POST /v1/instances', 'h2', 'op-3'), { kind: 'conflict' });
    assert.deepEqual(await claim('POST /api/vm/install', 'h2', 'op-4'), { kind: 'new' });
    await store.idempotency.forget('k1', 'POST /v1/instances');
    assert.deepEqual(await claim('POST /v1/instances', 'h2', 'op-5'), { kind: 'new' });
  });

  it('gives one new to many concurrent claims of one key, from two stores on one file', async (t) => {
    const dir = dataDir();
    const a = await open(t, { dataDir: dir });
    const b = await open(t, { dataDir: dir });
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).idempotency.claim({ key: 'k', scope: 's', bodyHash: 'h', operationId: `op-${i}` }),
      ),
    );
    const fresh = answers.filter((x) => x.kind === 'new');
    assert.equal(fresh.length, 1);
    const winner = answers.findIndex((x) => x.kind === 'new');
    for (const x of answers)
      if (x.kind !== 'new') assert.deepEqual(x, { kind: 'existing', operationId: `op-${winner}` });
  });
});
