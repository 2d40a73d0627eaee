import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { NotFoundError } from '@vmplane/common';
import type { LxdClient } from '@vmplane/lxd';
import { AlreadyExistsError, InvalidRequestError, UnsupportedError } from '../src/errors.js';
import type { LxdRef } from '../src/model/instance.js';
import { createLxdProvider, type LxdProvider } from '../src/providers/lxd/index.js';
import type { GuestChange, InstallSpec, InstallState } from '../src/providers/provider.js';
import { connect, FakeStages, IMAGE_ALIAS, removeRun, STAGES, text, uniqueName } from './support/lxd.js';

const MiB = 2 ** 20;

describe('LXD provider against the daemon', () => {
  let lxd: LxdClient;
  let provider: LxdProvider;
  const name = uniqueName('main');
  const vmid = 900_000 + randomInt(90_000);
  let ref: LxdRef;
  const stages = new FakeStages();
  const state: InstallState = { vmid };
  const spec: InstallSpec = {
    name,
    image: IMAGE_ALIAS,
    kind: 'container',
    vcpus: 1,
    memoryMiB: 128,
    diskGiB: 3,
    env: { GREETING: 'hello-from-env' },
    tags: { team: 'core', purpose: 'test' },
  };

  before(async () => {
    lxd = await connect();
    provider = createLxdProvider({ name: 'lxd-test', client: lxd });
  });

  after(async () => {
    await removeRun(lxd);
    provider.close();
    lxd.close();
  });

  test('the install plan has every stage and ends with a running instance that answers exec', async () => {
    const plan = provider.install(spec);
    assert.deepEqual(Object.keys(plan).sort(), [...STAGES].sort());
    const existedAtRegistration: boolean[] = [];
    stages.onRegister = async (undo) => {
      if (undo.kind === 'lxd.delete-instance') existedAtRegistration.push(await lxd.instances.exists(name));
    };
    const outcomes = await stages.run(plan, state);

    assert.equal(outcomes.get('preparation > checking VMID')?.skipped, undefined);
    assert.equal(outcomes.get('preparation > assigning IP')?.skipped, true);
    assert.equal(outcomes.get('OS preparation > downloading OS image')?.renamedTo, 'OS preparation > using OS image');
    assert.equal(outcomes.get('SSH preparation > checking SSH key')?.skipped, true);
    assert.equal(outcomes.get('VM creation > importing disk image')?.skipped, true);
    assert.equal(outcomes.get('VM initialization > initializing configuration')?.skipped, undefined);
    assert.equal(outcomes.get('VM initialization > migrating VM')?.skipped, true);
    assert.equal(outcomes.get('VM initialization > SSH initialization')?.skipped, true);
    assert.equal(outcomes.get('VM initialization > rebooting VM')?.skipped, true);

    // The undo intent was on record before the create request went out.
    assert.deepEqual(existedAtRegistration, [false]);
    const undo = stages.undos.find((u) => u.kind === 'lxd.delete-instance');
    assert.deepEqual(undo?.payload, { project: 'default', name, operation: stages.operationId });
    assert.equal(undo?.stage, 'VM creation > creating VM');
    // A local image: nothing was downloaded, so there is nothing to undo for it.
    assert.equal(stages.undos.filter((u) => u.kind === 'lxd.delete-image').length, 0);

    assert.ok(state.ref);
    ref = state.ref as LxdRef;
    assert.deepEqual(ref, { type: 'lxd', project: 'default', name, kind: 'container' });
    assert.equal(state.storage, 'default');
    assert.match(state.imageVolume ?? '', /^[0-9a-f]{64}$/);

    const instance = await lxd.instances.get(name);
    assert.equal(instance.status, 'Running');
    assert.equal(instance.config['limits.cpu'], '1');
    assert.equal(instance.config['limits.memory'], '128MiB');
    assert.equal(instance.config['user.vmplane.id'], String(vmid));
    assert.equal(instance.config['user.vmplane.tag.team'], 'core');
    assert.equal(instance.config['environment.GREETING'], 'hello-from-env');
    assert.equal(instance.devices.root?.size, '3GiB');

    const proc = await provider.exec(ref, { command: ['sh', '-c', 'echo "$GREETING"'] });
    const [out, code] = await Promise.all([text(proc.stdout), proc.exit]);
    assert.equal(code, 0);
    assert.equal(out.trim(), 'hello-from-env');
  });

  test('list, get and used show it with the mapped state, limits and tags', async () => {
    const listed = (await provider.list()).find((g) => g.name === name);
    assert.ok(listed);
    assert.equal(listed.state, 'Running');
    assert.equal(listed.backendStatus, 'Running');
    assert.deepEqual(listed.ref, ref);
    assert.equal(listed.vcpus, 1);
    assert.equal(listed.memoryBytes, 128 * MiB);
    assert.deepEqual(listed.tags, { team: 'core', purpose: 'test' });

    assert.deepEqual(await provider.get(ref), listed);
    assert.equal(await provider.get({ ...ref, name: uniqueName('absent') }), undefined);

    const used = await provider.used();
    assert.ok(used.vmids.has(vmid));
  });

  test('an install whose name or VMID is taken, or that asks for more than the host has, is refused', async () => {
    const taken = provider.install({ ...spec });
    await assert.rejects(
      taken['preparation > setting default config values'](stages.context(), {}),
      AlreadyExistsError,
    );
    await assert.rejects(taken['preparation > checking VMID'](stages.context(), { vmid }), AlreadyExistsError);
    const huge = provider.install({ ...spec, name: uniqueName('huge'), vcpus: 100_000 });
    await assert.rejects(huge['preparation > validating CPU and RAM'](stages.context(), {}), InvalidRequestError);
    const missing = provider.install({ ...spec, name: uniqueName('noimg'), image: 'vmpc-no-such-image' });
    await assert.rejects(missing['OS preparation > getting OS image'](stages.context(), {}), InvalidRequestError);
  });

  test('watch reports a stop made directly through the client', async () => {
    const controller = new AbortController();
    const seen: GuestChange[] = [];
    let live: () => void = () => {};
    const isLive = new Promise<void>((resolve) => {
      live = resolve;
    });
    const watching = (async () => {
      for await (const change of provider.watch(controller.signal)) {
        if (change.ref.type !== 'lxd' || change.ref.name !== name) continue;
        seen.push(change);
        live();
        if (change.event === 'instance-stopped') break;
      }
    })();
    // The stream connects on its own schedule and a stop before it listens would be missed: change
    // a tag until the watch reports one, then stop.
    let answered = false;
    void isLive.then(() => {
      answered = true;
    });
    while (!answered) {
      await lxd.instances.patch(name, { config: { 'user.vmplane.tag.watch': String(Date.now()) } });
      await Promise.race([isLive, new Promise((r) => setTimeout(r, 200))]);
    }
    await lxd.instances.stop(name, { force: true });
    await watching;
    controller.abort();
    const last = seen.at(-1);
    assert.deepEqual(last, { kind: 'updated', ref, event: 'instance-stopped' });
    assert.equal((await provider.get(ref))?.state, 'Stopped');

    await provider.start(ref);
    await provider.waitReady(ref, { timeout: 60_000 });
    assert.equal((await provider.get(ref))?.state, 'Running');
  });

  test('exec: stdin, stdout, stderr and the exit code; interactive input; a missing command', async () => {
    const proc = await provider.exec(ref, {
      command: ['sh', '-c', 'read line; echo "got:$line"; echo oops >&2; exit 3'],
      stdin: 'hello\n',
    });
    const [out, err, code] = await Promise.all([text(proc.stdout), text(proc.stderr), proc.exit]);
    assert.equal(out, 'got:hello\n');
    assert.equal(err, 'oops\n');
    assert.equal(code, 3);

    const cat = await provider.exec(ref, { command: ['sh', '-c', 'cat; exit 0'], interactive: true });
    const catOut = text(cat.stdout);
    await cat.write('one ');
    await cat.write(Buffer.from('two'));
    await cat.closeStdin();
    assert.equal(await catOut, 'one two');
    assert.equal(await cat.exit, 0);
    await assert.rejects(cat.resize(40, 100), InvalidRequestError);

    const missing = await provider.exec(ref, { command: ['vmpc-no-such-command'] });
    assert.equal(await missing.exit, 127);
  });

  test('files: stat of a file, a directory, a symlink and a missing path; write and read back', async () => {
    await provider.writeFile(ref, '/root/note.txt', Buffer.from('twelve bytes'), { mode: 0o640 });
    const file = await provider.stat(ref, '/root/note.txt');
    assert.deepEqual(file, { exists: true, is_dir: false, is_file: true, is_symlink: false, mode: 0o640, size: 12 });
    assert.equal(await text(await provider.readFile(ref, '/root/note.txt')), 'twelve bytes');

    const dir = await provider.stat(ref, '/root');
    assert.equal(dir.exists, true);
    assert.equal(dir.is_dir, true);

    await lxd.instances.files.symlink(name, '/root/link', '/root/note.txt');
    const link = await provider.stat(ref, '/root/link');
    assert.equal(link.is_symlink, true);
    assert.equal(link.link_target, '/root/note.txt');

    assert.deepEqual(await provider.stat(ref, '/root/no-such-file'), { exists: false });
    await assert.rejects(provider.stat({ ...ref, name: uniqueName('gone') }, '/'), NotFoundError);
    await assert.rejects(provider.readFile(ref, '/root'), InvalidRequestError);

    async function* chunks() {
      yield Buffer.from('streamed ');
      yield Buffer.from('content');
    }
    await provider.writeFile(ref, '/root/streamed.txt', chunks());
    assert.equal(await text(await provider.readFile(ref, '/root/streamed.txt')), 'streamed content');
  });

  test('the console log holds what the guest wrote to its console', async () => {
    const marker = `console-marker-${randomInt(1e9)}`;
    const proc = await provider.exec(ref, { command: ['sh', '-c', `echo ${marker} > /dev/console`] });
    assert.equal(await proc.exit, 0);
    let all = '';
    for await (const chunk of provider.consoleLog(ref, {})) all += chunk;
    assert.match(all, new RegExp(marker));
  });

  test('stats come from the instance state and its limits', async () => {
    const stats = await provider.stats(ref);
    assert.ok(stats.cpuSeconds > 0);
    assert.ok(stats.memoryRssBytes > 0);
    assert.ok(stats.memoryVmsBytes >= stats.memoryRssBytes);
    assert.equal(stats.allocatedVcpus, 1);
    assert.equal(stats.allocatedMemoryBytes, 128 * MiB);
    assert.equal(typeof stats.networkRxBytes, 'number');
  });

  test('setCpu, setMemory and growDisk change the limits', async () => {
    await provider.setCpu(ref, 2);
    await provider.setMemory(ref, 256);
    const guest = await provider.get(ref);
    assert.equal(guest?.vcpus, 2);
    assert.equal(guest?.memoryBytes, 256 * MiB);
    await provider.growDisk(ref, 1);
    assert.equal((await lxd.instances.get(name)).devices.root?.size, '4GiB');
    await assert.rejects(provider.setCpu(ref, 0), InvalidRequestError);
    await assert.rejects(provider.growDisk(ref, 0), InvalidRequestError);
  });

  test('snapshot, restore and delete a snapshot (deleting it twice is fine)', async () => {
    await provider.writeFile(ref, '/root/state.txt', Buffer.from('before'));
    await provider.snapshot(ref, 'clean');
    await provider.writeFile(ref, '/root/state.txt', Buffer.from('after'));
    await provider.restoreSnapshot(ref, 'clean');
    assert.equal(await text(await provider.readFile(ref, '/root/state.txt')), 'before');
    await provider.deleteSnapshot(ref, 'clean');
    await provider.deleteSnapshot(ref, 'clean');
    assert.deepEqual(await lxd.instances.snapshots.names(name), []);
    // Restoring may have restarted the container: it must answer again.
    await provider.waitReady(ref, { timeout: 60_000 });
  });

  test('fork copies the instance under a new name, starts it, and keeps ids unique', async () => {
    const forkName = uniqueName('fork');
    const forked = await provider.fork(ref, forkName);
    assert.deepEqual(forked, { type: 'lxd', project: 'default', name: forkName, kind: 'container' });
    const copy = await lxd.instances.get(forkName);
    assert.equal(copy.status, 'Running');
    assert.equal(copy.config['user.vmplane.id'], undefined);
    assert.equal(copy.config['user.vmplane.operation'], undefined);
    assert.equal(copy.config['user.vmplane.tag.team'], 'core');
    await provider.waitReady(forked, { timeout: 60_000 });
    assert.equal(await text(await provider.readFile(forked, '/root/state.txt')), 'before');
    await provider.destroy(forked);

    // With the id core reserved for it, the copy carries that one.
    const withId = await provider.fork(ref, uniqueName('forkid'), { vmid: vmid + 1 });
    assert.ok((await provider.used()).vmids.has(vmid + 1));
    await provider.destroy(withId);
  });

  test('what LXD here cannot do is an UnsupportedError, never a backend error half-way', async () => {
    assert.equal(provider.capabilities.has('standby'), false, 'no criu on this machine');
    assert.equal(provider.capabilities.has('migrate'), false, 'not clustered');
    await assert.rejects(provider.standby(ref), UnsupportedError);
    await assert.rejects(provider.migrate(ref, 'elsewhere'), UnsupportedError);
    await assert.rejects(provider.snapshot(ref, 'hot', { stateful: true }), UnsupportedError);
    assert.deepEqual(await provider.probe(), { reachable: true, version: '5.0.2' });
    const [node] = await provider.nodes();
    assert.equal(node?.online, true);
    assert.ok((node?.cpus ?? 0) >= 1);
  });

  test('stop (clean and forced), start and reboot; destroy twice is fine', async () => {
    await provider.stop(ref);
    assert.equal((await provider.get(ref))?.state, 'Stopped');
    await provider.stop(ref); // already stopped: nothing to do
    await provider.start(ref);
    await provider.waitReady(ref, { timeout: 60_000 });
    await provider.reboot(ref);
    await provider.waitReady(ref, { timeout: 60_000 });
    await provider.stop(ref, { force: true });
    await provider.destroy(ref);
    await provider.destroy(ref);
    assert.equal(await provider.get(ref), undefined);
  });
});
