import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  etagOf,
  InvalidArgumentError,
  type LxdClient,
  LxdError,
  NotFoundError,
  PreconditionFailedError,
  StatusCode,
  writable,
} from '@vmplane/lxd';
import { connect, IMAGE_ALIAS, PREFIX, removeInstance, uniqueName } from './support/lxd.js';

describe('instances', () => {
  let lxd: LxdClient;
  const created: string[] = [];
  const make = async (label: string, start = false) => {
    const name = uniqueName(label);
    created.push(name);
    await (await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS })).wait();
    if (start) await lxd.instances.start(name);
    return name;
  };

  before(async () => {
    lxd = await connect();
  });
  after(async () => {
    for (const name of created) await removeInstance(lxd, name);
    lxd.close();
  });

  test('lifecycle: create, start, freeze, unfreeze, restart, stop, rename, delete', async () => {
    const name = await make('life');
    assert.equal((await lxd.instances.state(name)).status, 'Stopped');
    await lxd.instances.start(name);
    const running = await lxd.instances.state(name);
    assert.equal(running.status, 'Running');
    assert.equal(running.status_code, StatusCode.Running);
    assert.ok(running.pid > 0);
    await lxd.instances.freeze(name);
    assert.equal((await lxd.instances.state(name)).status, 'Frozen');
    await lxd.instances.unfreeze(name);
    await lxd.instances.restart(name);
    assert.equal((await lxd.instances.state(name)).status, 'Running');
    await lxd.instances.stop(name);
    assert.equal((await lxd.instances.state(name)).status, 'Stopped');
    const renamed = uniqueName('renamed');
    created.push(renamed);
    await lxd.instances.rename(name, renamed);
    assert.equal(await lxd.instances.exists(name), false);
    await lxd.instances.delete(renamed);
    assert.equal(await lxd.instances.exists(renamed), false);
  });

  test('list: names, recursion 1 and 2, filter, all projects', async () => {
    const a = await make('lista', true);
    const b = await make('listb');
    const names = await lxd.instances.names();
    assert.ok(names.includes(a) && names.includes(b));
    const list = await lxd.instances.list();
    assert.equal(list.find((i) => i.name === a)?.status, 'Running');
    const full = await lxd.instances.listFull();
    const fa = full.find((i) => i.name === a);
    assert.ok(fa?.state && fa.state.pid > 0, 'recursion=2 carries state');
    const stopped = await lxd.instances.list({ filter: `name eq ${b}` });
    assert.deepEqual(
      stopped.map((i) => i.name),
      [b],
    );
    const everywhere = await lxd.instances.list({ allProjects: true });
    assert.ok(everywhere.some((i) => i.name === a && i.project === 'default'));
  });

  test('update with ETag; a stale ETag is the typed 412', async () => {
    const name = await make('etag');
    const first = await lxd.instances.get(name);
    const tag = etagOf(first);
    assert.ok(tag, 'get returns an ETag');
    // LXD's instance ETag covers architecture, config, devices, ephemeral and profiles.
    const put = writable.instance(first);
    await lxd.instances.update(name, { ...put, config: { ...put.config, 'user.step': 'first' } }, { etag: tag });
    const second = await lxd.instances.get(name);
    assert.equal(second.config['user.step'], 'first');
    assert.notEqual(etagOf(second), tag);
    const stale = lxd.instances.update(
      name,
      { ...put, config: { ...put.config, 'user.step': 'stale' } },
      { etag: tag },
    );
    await assert.rejects(stale, (e: unknown) => {
      assert.ok(e instanceof PreconditionFailedError);
      assert.ok(e instanceof LxdError);
      assert.equal(e.status, 412);
      return true;
    });
    assert.equal((await lxd.instances.get(name)).config['user.step'], 'first');
    await lxd.instances.patch(name, { config: { 'user.vmplane': 'patched' } });
    const patched = await lxd.instances.get(name);
    assert.equal(patched.config['user.vmplane'], 'patched');
    assert.equal(patched.config['user.step'], 'first');
  });

  test('copy an instance and one of its snapshots', async () => {
    const src = await make('copysrc', true);
    await lxd.instances.files.push(src, '/root/marker', 'before');
    await lxd.instances.snapshots.create(src, { name: 'snap0' });
    await lxd.instances.files.push(src, '/root/marker', 'after');
    const whole = uniqueName('copy');
    created.push(whole);
    await (await lxd.instances.copy(src, whole)).wait();
    assert.deepEqual(await lxd.instances.snapshots.names(whole), ['snap0']);
    const fromSnap = uniqueName('fromsnap');
    created.push(fromSnap);
    await (await lxd.instances.copy(`${src}/snap0`, fromSnap)).wait();
    await lxd.instances.start(fromSnap);
    const marker = await lxd.instances.files.pull(fromSnap, '/root/marker');
    assert.equal(marker.type === 'file' && marker.content.toString(), 'before');
  });

  test('snapshots: create, list, get, rename, restore, delete', async () => {
    const name = await make('snaps', true);
    await lxd.instances.files.push(name, '/root/state', 'v1');
    await lxd.instances.snapshots.create(name, { name: 's1' });
    await lxd.instances.files.push(name, '/root/state', 'v2');
    const list = await lxd.instances.snapshots.list(name);
    assert.deepEqual(
      list.map((s) => s.name),
      ['s1'],
    );
    assert.equal((await lxd.instances.snapshots.get(name, 's1')).stateful, false);
    await lxd.instances.snapshots.rename(name, 's1', 's1b');
    await lxd.instances.snapshots.restore(name, 's1b');
    const state = await lxd.instances.files.pull(name, '/root/state');
    assert.equal(state.type === 'file' && state.content.toString(), 'v1');
    await lxd.instances.snapshots.delete(name, 's1b');
    assert.deepEqual(await lxd.instances.snapshots.names(name), []);
    await assert.rejects(lxd.instances.snapshots.create(name, { name: 'a/b' }), InvalidArgumentError);
  });

  test('backups: create, list, export, import as a new instance, delete', async () => {
    const name = await make('backup', true);
    await lxd.instances.files.push(name, '/root/kept', 'in the backup');
    await lxd.instances.backups.create(name, { name: 'b0', instance_only: true, compression_algorithm: 'gzip' });
    assert.deepEqual(await lxd.instances.backups.names(name), ['b0']);
    const stream = await lxd.instances.backups.export(name, 'b0');
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    const tarball = Buffer.concat(chunks);
    assert.ok(tarball.length > 1000);
    await lxd.instances.backups.delete(name, 'b0');
    assert.deepEqual(await lxd.instances.backups.names(name), []);
    const restored = uniqueName('restored');
    created.push(restored);
    await (await lxd.instances.importBackup(tarball, { name: restored })).wait();
    await lxd.instances.start(restored);
    const kept = await lxd.instances.files.pull(restored, '/root/kept');
    assert.equal(kept.type === 'file' && kept.content.toString(), 'in the backup');
  });

  test('logs, and the console over websockets', async () => {
    const name = await make('logs', true);
    const logs = await lxd.instances.logs.list(name);
    assert.ok(logs.includes('lxc.log'), `log files: ${logs.join(', ')}`);
    assert.match(await lxd.instances.logs.get(name, 'lxc.log'), new RegExp(name));
    const session = await lxd.instances.console.attach(name, { width: 100, height: 30 });
    await session.resize(120, 40);
    await session.write('\n');
    session.close();
    await session.operation.settled();
  });

  test('errors: typed, with status and LXD code, and nothing sent for bad input', async () => {
    const missing = `${PREFIX}missing-0`;
    await assert.rejects(lxd.instances.get(missing), (e: unknown) => {
      assert.ok(e instanceof NotFoundError);
      assert.ok(e instanceof LxdError);
      assert.equal(e.status, 404);
      assert.equal(e.code, 404);
      return true;
    });
    for (const bad of ['', '1abc', 'has space', 'x'.repeat(64), '../etc', 'end-']) {
      await assert.rejects(lxd.instances.create({ name: bad }), InvalidArgumentError);
    }
    await assert.rejects(lxd.instances.setState('vmpt-x', 'explode' as 'start'), InvalidArgumentError);
    const noImage = uniqueName('noimg');
    await assert.rejects(
      async () => (await lxd.instances.createFromImage(noImage, { alias: 'vmpt-no-such-alias' })).wait(),
      NotFoundError,
    );
    assert.equal(await lxd.instances.exists(noImage), false, 'a failed create leaves no instance');
  });
});
