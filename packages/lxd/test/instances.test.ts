import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortError,
  etagOf,
  InvalidArgumentError,
  LxdClient,
  LxdError,
  NotFoundError,
  PreconditionFailedError,
  StatusCode,
  writable,
} from '@vmplane/lxd';
import { capturingLogger } from './support/capture.js';
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
    // Any bytes will do: a Uint8Array that is not a Buffer, as a browser-style caller has.
    await (await lxd.instances.importBackup(new Uint8Array(tarball), { name: restored })).wait();
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

  /**
   * Interruptions say what may have happened. An AbortError with `sent: false` means nothing
   * reached the daemon, so no instance may appear; one that names an operation points at work
   * that goes on in the daemon. Checked at moments chosen by the client's own progress (before
   * anything, as the answer begins, while waiting) and at fixed delays that land anywhere.
   */
  test('an aborted create or start says whether it was sent and which operation it started', async () => {
    type Outcome = { name: string; error: unknown; at: string };
    const outcomes: Outcome[] = [];
    const create = async (at: string, abortWhen: (controller: AbortController) => (() => void) | undefined) => {
      const name = uniqueName('abort');
      created.push(name);
      const controller = new AbortController();
      const stop = abortWhen(controller);
      try {
        const op = await client.instances.createFromImage(
          name,
          { alias: IMAGE_ALIAS },
          {},
          { signal: controller.signal },
        );
        await op.wait({ signal: controller.signal });
        outcomes.push({ name, error: undefined, at });
      } catch (error) {
        outcomes.push({ name, error, at });
      } finally {
        stop?.();
      }
    };
    // Aborts the controller the moment the transport sees the answer to `method` begin.
    let onAnswer: ((method: string, path: string) => void) | undefined;
    const logger = capturingLogger((line) => {
      if (line.message === 'lxd request') onAnswer?.(String(line.fields.method), String(line.fields.path));
    });
    const client = await LxdClient.connect({ logger });
    try {
      await create('before anything', (c) => {
        c.abort();
        return undefined;
      });
      await create('as the POST is answered', (c) => {
        onAnswer = (method) => method === 'POST' && c.abort();
        return () => {
          onAnswer = undefined;
        };
      });
      for (const ms of [0, 2, 5, 10, 20, 40, 80, 160]) {
        await create(`after ${ms} ms`, (c) => {
          const timer = setTimeout(() => c.abort(), ms);
          return () => clearTimeout(timer);
        });
      }
      // Starts of a stopped instance: before anything, as the PUT is answered, and at delays.
      const target = uniqueName('abortstart');
      created.push(target);
      await (await client.instances.createFromImage(target, { alias: IMAGE_ALIAS })).wait();
      const starts: { error: unknown; at: string }[] = [];
      const start = async (at: string, abortWhen: (c: AbortController) => (() => void) | undefined) => {
        await client.instances.stop(target, { force: true }).catch(() => {});
        const controller = new AbortController();
        const stop = abortWhen(controller);
        try {
          await client.instances.start(target, { signal: controller.signal });
          starts.push({ error: undefined, at });
        } catch (error) {
          starts.push({ error, at });
        } finally {
          stop?.();
        }
        const e = starts.at(-1)?.error;
        if (e instanceof AbortError) {
          // Let what was started finish before looking.
          await sleep(1_500);
          const status = (await client.instances.get(target)).status;
          if (!e.sent) assert.equal(status, 'Stopped', `start aborted ${at}: said not sent, yet it started`);
          if (e.operationId) assert.equal(status, 'Running', `start aborted ${at}: its operation did not run`);
        }
      };
      await start('before anything', (c) => {
        c.abort();
        return undefined;
      });
      await start('as the PUT is answered', (c) => {
        onAnswer = (method, path) => method === 'PUT' && path.endsWith('/state') && c.abort();
        return () => {
          onAnswer = undefined;
        };
      });
      for (const ms of [0, 3, 10, 30]) {
        await start(`after ${ms} ms`, (c) => {
          const timer = setTimeout(() => c.abort(), ms);
          return () => clearTimeout(timer);
        });
      }
      for (const { error, at } of starts) {
        if (error === undefined) continue;
        assert.ok(error instanceof AbortError, `start ${at}: ${String(error)}`);
      }
      const first = starts[0]?.error;
      assert.ok(first instanceof AbortError && !first.sent && first.operationId === undefined);
      const answered = starts[1]?.error;
      assert.ok(answered instanceof AbortError && answered.sent, 'aborted as the answer began: sent');
      assert.match(answered.operationId ?? '', /^[0-9a-f-]{36}$/, 'and the operation it started is named');
      assert.match(answered.message, new RegExp(`operation ${answered.operationId} had started`));

      // Whatever a create's POST started has ended by now; then each outcome is checked.
      await sleep(3_000);
      for (const { name, error, at } of outcomes) {
        const exists = await client.instances.exists(name);
        if (error === undefined) {
          assert.ok(exists, `create ${at} succeeded, yet there is no instance`);
          continue;
        }
        assert.ok(error instanceof AbortError, `create ${at}: ${String(error)}`);
        if (!error.sent) assert.equal(exists, false, `create aborted ${at}: said not sent, yet the instance exists`);
        if (error.operationId) {
          assert.ok(exists, `create aborted ${at}: named operation ${error.operationId}, yet no instance`);
          assert.match(error.message, /had started and may still run/);
        } else if (error.sent) assert.match(error.message, /had been sent/);
      }
      const none = outcomes[0]?.error;
      assert.ok(none instanceof AbortError && !none.sent, 'aborted before anything: not sent');
      const known = outcomes[1]?.error;
      assert.ok(known instanceof AbortError && known.sent && known.operationId, 'aborted as the POST was answered');
    } finally {
      client.close();
    }
  });
});
