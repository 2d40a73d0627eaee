import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CancelledError,
  Engine,
  EventBus,
  type OperationEvent,
  openStore,
  type SqlStore,
  type StageDef,
  type UndoHandler,
} from '@vmplane/core';

/*
 * The engine over a real store file: stages journalled in order, undo persisted before each step
 * and run in reverse, cancel, recovery in a second engine after the first "died", idempotency, and
 * secrets kept out of the journal.
 */

let dir = '';
let store: SqlStore;
const undone: string[] = [];
const handlers: Record<string, UndoHandler> = {
  'test.remove': async (payload) => {
    undone.push(String(payload.what));
  },
};
const engine = () => new Engine({ store, bus: new EventBus(), undo: (kind) => handlers[kind], undoTimeoutMs: 10_000 });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmplane-engine-'));
  store = await openStore({ dataDir: dir });
});

after(async () => {
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const make = (what: string): StageDef => ({
  name: `making ${what}`,
  async run(ctx) {
    await ctx.registerUndo('test.remove', { what });
    await ctx.log(`made ${what}\nand logged a second line`);
    return undefined;
  },
});

describe('the engine', () => {
  test('stages run in order, each announced and timed; success clears the undo log', async () => {
    const e = engine();
    const { operation } = await e.start({ kind: 'test', request: {}, stages: [make('a'), make('b')] });
    const done = await e.finished(operation.id);
    assert.equal(done?.status, 'succeeded');
    const events = await store.operations.events(operation.id);
    assert.deepEqual(
      events.map((x) => [x.seq, x.step, x.status]),
      [
        [1, 'making a', 'processing'],
        [2, 'making a', 'processing'],
        [3, 'making a', 'processing'],
        [4, 'making a', 'success'],
        [5, 'making b', 'processing'],
        [6, 'making b', 'processing'],
        [7, 'making b', 'processing'],
        [8, 'making b', 'success'],
      ],
    );
    assert.equal(events[0]?.message, '[*] start making a');
    assert.equal(events[1]?.message, '  made a');
    assert.match(events[3]?.message ?? '', /^\[\+\] making a \(\d+\.\d\ds\)$/);
    assert.deepEqual(await store.undo.pending(operation.id), []);
    assert.deepEqual(undone, []);
  });

  test('a failing stage undoes the earlier ones in reverse and ends with an honest error event', async () => {
    undone.length = 0;
    const e = engine();
    const boom: StageDef = {
      name: 'breaking',
      async run(ctx) {
        await ctx.registerUndo('test.remove', { what: 'half-made c' });
        throw new Error('the backend said no');
      },
    };
    const { operation } = await e.start({ kind: 'test', request: {}, stages: [make('a'), make('b'), boom, make('d')] });
    const done = await e.finished(operation.id);
    assert.equal(done?.status, 'failed');
    assert.equal(done?.error?.message, 'the backend said no');
    assert.deepEqual(undone, ['half-made c', 'b', 'a']);
    const events = await store.operations.events(operation.id);
    const last = events.at(-1) as OperationEvent;
    assert.equal(last.status, 'error');
    assert.equal(last.message, '[-] breaking: the backend said no');
    assert.ok(!events.some((x) => x.step === 'making d'), 'no stage ran after the failure');
    assert.deepEqual(await store.undo.pending(operation.id), []);
  });

  test('cancel stops the running stage, undoes, and ends cancelled', async () => {
    undone.length = 0;
    const e = engine();
    let entered: () => void = () => {};
    const inStage = new Promise<void>((r) => {
      entered = r;
    });
    const waits: StageDef = {
      name: 'waiting',
      async run(ctx) {
        entered();
        await new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        return undefined;
      },
    };
    const { operation } = await e.start({ kind: 'test', request: {}, stages: [make('x'), waits] });
    await inStage;
    await e.cancel(operation.id);
    const done = await e.finished(operation.id);
    assert.equal(done?.status, 'cancelled');
    assert.equal(done?.error?.code, new CancelledError({ message: '' }).code);
    assert.deepEqual(undone, ['x']);
  });

  test('an operation a dead process left is undone by the next one from the persisted intents', async () => {
    undone.length = 0;
    // What a process killed mid-stage leaves: the operation running, an event, two intents.
    const op = await store.operations.create({ kind: 'install', request: {} });
    await store.operations.update(op.id, { status: 'running' });
    await store.operations.appendEvent(op.id, {
      step: 'making a',
      status: 'processing',
      message: '[*] start making a',
    });
    await store.undo.push(op.id, 'test.remove', { what: 'first' });
    await store.undo.push(op.id, 'test.remove', { what: 'second' });
    const recovered = await engine().recover();
    const mine = recovered.find((r) => r.id === op.id);
    assert.equal(mine?.status, 'interrupted');
    assert.deepEqual(undone, ['second', 'first']);
    const events = await store.operations.events(op.id);
    assert.equal(events[0]?.message, '[*] start making a', 'what was written before the kill stays');
    assert.equal(events.at(-1)?.status, 'error');
    assert.deepEqual(await store.undo.pending(op.id), []);
  });

  test('the same idempotency key and body give the same operation; another body is refused', async () => {
    const e = engine();
    const key = { key: `k-${Date.now()}`, scope: 'test', bodyHash: 'h1' };
    const a = await e.start({ kind: 'test', request: {}, stages: [], idempotency: key });
    const b = await e.start({ kind: 'test', request: {}, stages: [], idempotency: key });
    assert.equal(b.operation.id, a.operation.id);
    assert.equal(b.existing, true);
    await assert.rejects(
      e.start({ kind: 'test', request: {}, stages: [], idempotency: { ...key, bodyHash: 'h2' } }),
      (err: unknown) => err instanceof Error && err.name === 'IdempotencyKeyReused',
    );
  });

  test('a secret is scrubbed from every message, even when a stage or a backend quotes it', async () => {
    const secret = 'pw-"quoted"-Secret-913';
    const e = engine();
    const leaky: StageDef = {
      name: 'leaking',
      async run(ctx) {
        await ctx.log(`running chpasswd with ${secret}`);
        throw new Error(`backend echoed ${encodeURIComponent(secret)}`);
      },
    };
    const { operation } = await e.start({ kind: 'test', request: {}, stages: [leaky], secrets: [secret] });
    await e.finished(operation.id);
    const all =
      JSON.stringify(await store.operations.events(operation.id)) +
      JSON.stringify(await store.operations.get(operation.id));
    assert.ok(!all.includes(secret), 'the secret is in the journal');
    assert.ok(!all.includes(encodeURIComponent(secret)), 'the encoded secret is in the journal');
    assert.match(all, /\[redacted\]/);
  });
});
