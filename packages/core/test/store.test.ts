import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  AlreadyExistsError,
  type Instance,
  InvalidRequestError,
  MIGRATIONS,
  openStore,
  refKey,
  type SqlStore,
  STORE_FILE,
  StoreClosedError,
  StoreMigrationError,
} from '../src/index.js';
import { tempStores } from './support/store.js';

const { dataDir, open } = tempStores('vmpt-store-');

function instance(over: Partial<Instance> = {}): Instance {
  return {
    id: 'i-1',
    name: 'web',
    image: 'debian-12',
    state: 'Created',
    env: { A: '1' },
    tags: { team: 'a' },
    created_at: '2026-01-01T00:00:00.000Z',
    expires_at: null,
    provider: 'lab',
    ref: { type: 'proxmox', node: 'pve1', vmid: 105, kind: 'qemu' },
    ...over,
  };
}

describe('opening the store', () => {
  it('makes <dataDir>/vmplane.db with WAL, foreign keys and a busy timeout', async (t) => {
    const dir = dataDir();
    const store = await open(t, { dataDir: dir });
    assert.ok(existsSync(join(dir, STORE_FILE)));
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
    assert.equal(mode.rows[0]?.journal_mode, 'wal');
    const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(store.db);
    assert.equal(fk.rows[0]?.foreign_keys, 1);
    const busy = await sql<{ timeout: number }>`pragma busy_timeout`.execute(store.db);
    assert.equal(busy.rows[0]?.timeout, 5000);
  });

  it('runs the migrations on a fresh file and not again on re-open; the data survives', async () => {
    const dir = dataDir();
    const first = await openStore({ dataDir: dir });
    const ran = await first.db
      .selectFrom('vmplane_migrations' as never)
      .selectAll()
      .execute();
    assert.deepEqual(
      ran.map((r) => (r as { name: string }).name),
      Object.keys(MIGRATIONS),
    );
    await first.instances.insert(instance());
    await first.close();

    // A migration run twice would fail on CREATE TABLE; the row would also be written twice.
    const second = await openStore({ dataDir: dir });
    try {
      const again = await second.db
        .selectFrom('vmplane_migrations' as never)
        .selectAll()
        .execute();
      assert.deepEqual(again, ran);
      assert.equal((await second.instances.find('web'))?.id, 'i-1');
    } finally {
      await second.close();
    }
  });

  it('refuses a database a newer vmplane migrated, and says why', async () => {
    const dir = dataDir();
    const first = await openStore({ dataDir: dir });
    await sql`insert into vmplane_migrations (name, timestamp) values ('9999_from_the_future', '2030-01-01')`.execute(
      first.db,
    );
    await first.close();
    await assert.rejects(openStore({ dataDir: dir }), (e: unknown) => {
      assert.ok(e instanceof StoreMigrationError);
      assert.match(e.message, /9999_from_the_future/);
      return true;
    });
  });

  it("opens a private ':memory:' database, each its own", async (t) => {
    const a = await open(t, { file: ':memory:' });
    const b = await open(t, { file: ':memory:' });
    await a.instances.insert(instance());
    assert.equal((await b.instances.list()).length, 0);
  });

  it('closes cleanly: twice is fine, later calls are refused', async () => {
    const store = await openStore({ file: ':memory:' });
    const pending = store.instances.insert(instance());
    await store.close();
    await store.close();
    await pending;
    await assert.rejects(store.instances.list(), StoreClosedError);
  });

  it('refuses a bad location before touching the disk', async () => {
    await assert.rejects(openStore({ dataDir: '' }), InvalidRequestError);
    await assert.rejects(openStore({ file: ':memory:', busyTimeoutMs: -1 }), InvalidRequestError);
  });
});

describe('instances', () => {
  it('round-trips every field, JSON columns included', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const full = instance({
      state_error: 'boom',
      size: '2GB',
      vcpus: 2,
      network: { enabled: true, ip: '127.77.0.105', mac: '02:00:00:00:00:01', name: 'net0' },
      expires_at: '2026-02-01T00:00:00.000Z',
      started_at: '2026-01-01T00:01:00.000Z',
      stopped_at: '2026-01-01T00:02:00.000Z',
      exit_code: 0,
      exit_message: 'done',
      has_snapshot: false,
      hypervisor: 'qemu',
      current_phase: 'boot',
      current_phase_since: '2026-01-01T00:01:30.000Z',
      phase_durations_ms: { create: 1200, boot: 300 },
    });
    await store.instances.insert(full);
    assert.deepEqual(await store.instances.find('i-1'), full);
    const minimal = instance({
      id: 'i-2',
      name: 'min',
      ref: { type: 'lxd', project: 'p', name: 'min', kind: 'container' },
    });
    await store.instances.insert(minimal);
    assert.deepEqual(await store.instances.find('i-2'), minimal);
  });

  it('finds by id first, then by name', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await store.instances.insert(instance({ id: 'x', name: 'one' }));
    await store.instances.insert(
      instance({ id: 'y', name: 'x', ref: { type: 'proxmox', node: 'n', vmid: 106, kind: 'qemu' } }),
    );
    assert.equal((await store.instances.find('x'))?.name, 'one');
    assert.equal((await store.instances.find('one'))?.id, 'x');
    assert.equal(await store.instances.find('nope'), undefined);
  });

  it('finds by provider and refKey', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const i = instance();
    await store.instances.insert(i);
    assert.equal((await store.instances.findByRef('lab', refKey(i.ref)))?.id, 'i-1');
    assert.equal(await store.instances.findByRef('other', refKey(i.ref)), undefined);
    assert.equal(await store.instances.findByRef('lab', 'proxmox/106'), undefined);
  });

  it('refuses a taken name, id or guest with AlreadyExistsError, changing nothing', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await store.instances.insert(instance());
    await assert.rejects(
      store.instances.insert(instance({ id: 'i-2', ref: { type: 'proxmox', node: 'n', vmid: 200, kind: 'qemu' } })),
      (e: unknown) => e instanceof AlreadyExistsError && /named "web"/.test(e.message),
    );
    await assert.rejects(store.instances.insert(instance({ name: 'other' })), AlreadyExistsError);
    await assert.rejects(store.instances.insert(instance({ id: 'i-3', name: 'third' })), /already proxmox\/105/);
    assert.deepEqual(
      (await store.instances.list()).map((i) => i.id),
      ['i-1'],
    );
  });

  it('refuses what is not an instance', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await assert.rejects(store.instances.insert(instance({ state: 'Exploded' as never })), InvalidRequestError);
    await assert.rejects(store.instances.insert(instance({ name: '' })), InvalidRequestError);
    await assert.rejects(store.instances.insert(instance({ ref: {} as never })), InvalidRequestError);
  });

  it('lists by state, provider and every tag pair', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const mk = (id: string, over: Partial<Instance>) =>
      instance({ id, name: id, ref: { type: 'lxd', project: 'default', name: id, kind: 'container' }, ...over });
    await store.instances.insert(mk('a', { state: 'Running', tags: { team: 'x', env: 'prod' } }));
    await store.instances.insert(mk('b', { state: 'Stopped', tags: { team: 'x' } }));
    await store.instances.insert(mk('c', { state: 'Running', provider: 'lxd', tags: { team: 'y', env: 'prod' } }));
    const ids = async (f: Parameters<SqlStore['instances']['list']>[0]) =>
      (await store.instances.list(f)).map((i) => i.id);
    assert.deepEqual(await ids({}), ['a', 'b', 'c']);
    assert.deepEqual(await ids({ state: 'Running' }), ['a', 'c']);
    assert.deepEqual(await ids({ provider: 'lxd' }), ['c']);
    assert.deepEqual(await ids({ tags: { team: 'x' } }), ['a', 'b']);
    assert.deepEqual(await ids({ tags: { team: 'x', env: 'prod' } }), ['a']);
    assert.deepEqual(await ids({ tags: { env: 'prod' }, state: 'Running', provider: 'lab' }), ['a']);
    assert.deepEqual(await ids({ tags: { missing: '' } }), []);
    assert.deepEqual(await ids({ tags: { toString: 'x' } }), []);
  });

  it('updates by merging; undefined clears an optional field; the ref moves its lookup', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await store.instances.insert(instance({ state_error: 'was broken', vcpus: 1 }));
    const after = await store.instances.update('i-1', {
      state: 'Running',
      state_error: undefined,
      vcpus: 4,
      name: undefined,
      ref: { type: 'proxmox', node: 'pve2', vmid: 107, kind: 'qemu' },
    });
    assert.equal(after?.state, 'Running');
    assert.equal(after?.vcpus, 4);
    assert.equal(after?.name, 'web');
    assert.ok(after && !('state_error' in after));
    assert.deepEqual(await store.instances.find('i-1'), after);
    assert.equal((await store.instances.findByRef('lab', 'proxmox/107'))?.id, 'i-1');
    assert.equal(await store.instances.findByRef('lab', 'proxmox/105'), undefined);
    assert.equal(await store.instances.update('gone', { state: 'Running' }), undefined);
  });

  it('refuses an update to a taken name and keeps the row as it was', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await store.instances.insert(instance());
    await store.instances.insert(
      instance({ id: 'i-2', name: 'db', ref: { type: 'proxmox', node: 'n', vmid: 9, kind: 'qemu' } }),
    );
    await assert.rejects(store.instances.update('i-2', { name: 'web', vcpus: 8 }), AlreadyExistsError);
    const still = await store.instances.find('i-2');
    assert.equal(still?.name, 'db');
    assert.equal(still?.vcpus, undefined);
  });

  it('deletes', async (t) => {
    const store = await open(t, { file: ':memory:' });
    await store.instances.insert(instance());
    assert.equal(await store.instances.delete('i-1'), true);
    assert.equal(await store.instances.delete('i-1'), false);
    assert.equal(await store.instances.find('web'), undefined);
  });
});

describe('a failed transaction', () => {
  // A trigger makes the database itself fail half-way through a method's transaction: after the
  // method's first write, at its second.
  it('leaves no journal counter behind when the event insert fails', async (t) => {
    const store = await open(t, { dataDir: dataDir() });
    await sql`create trigger fail_event before insert on operation_events when new.message = 'boom'
      begin select raise(abort, 'injected failure'); end`.execute(store.db);
    const op = await store.operations.create({ kind: 'install', request: {} });
    await assert.rejects(
      store.operations.appendEvent(op.id, { step: 's', status: 'info', message: 'boom' }),
      /injected failure/,
    );
    assert.deepEqual(await store.operations.events(op.id), []);
    const next = await store.operations.appendEvent(op.id, { step: 's', status: 'info', message: 'fine' });
    assert.equal(next.seq, 1);
  });

  it('leaves no half of an allocation group', async (t) => {
    const store = await open(t, { dataDir: dataDir() });
    await sql`create trigger fail_alloc before insert on allocations when new.value = 'boom'
      begin select raise(abort, 'injected failure'); end`.execute(store.db);
    await assert.rejects(
      store.allocations.claimGroup({
        owner: 'op',
        values: [
          { pool: 'vmid', value: '7' },
          { pool: 'ipv4:x', value: 'boom' },
        ],
      }),
      /injected failure/,
    );
    assert.deepEqual(await store.allocations.list(), []);
  });

  it('leaves no undo seq or id consumed', async (t) => {
    const store = await open(t, { dataDir: dataDir() });
    const op = await store.operations.create({ kind: 'install', request: {} });
    await sql`create trigger fail_undo before insert on undo_intents when new.kind = 'boom'
      begin select raise(abort, 'injected failure'); end`.execute(store.db);
    await assert.rejects(store.undo.push(op.id, 'boom', {}), /injected failure/);
    const intent = await store.undo.push(op.id, 'fine', {});
    assert.equal(intent.seq, 1);
    assert.equal(intent.id, 1);
  });
});
