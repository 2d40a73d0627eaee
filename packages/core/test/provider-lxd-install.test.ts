import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LxdClient } from '@vmplane/lxd';
import { type SimpleStreamsServer, startSimpleStreamsServer } from '../../lxd/test/support/simplestreams-server.js';
import { AlreadyExistsError, CancelledError, InvalidRequestError, ReadinessTimeoutError } from '../src/errors.js';
import type { LxdRef } from '../src/model/instance.js';
import { createLxdProvider, type LxdProvider } from '../src/providers/lxd/index.js';
import type { InstallSpec, InstallState } from '../src/providers/provider.js';
import { connect, FakeStages, IMAGE_ALIAS, removeInstance, removeRun, uniqueName } from './support/lxd.js';

const PASSWORD = `pw-${randomInt(1e9)}-S3cret!`;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVtcGxveWVlLW9mLXRoZS1tb250aA vmplane-test';

function spec(name: string, extra: Partial<InstallSpec> = {}): InstallSpec {
  return { name, image: IMAGE_ALIAS, kind: 'container', vcpus: 1, memoryMiB: 64, diskGiB: 1, ...extra };
}

describe('LXD provider: undo, images, readiness, users and addresses', () => {
  let lxd: LxdClient;
  let provider: LxdProvider;
  let ss: SimpleStreamsServer | undefined;
  const downloaded = new Set<string>();

  before(async () => {
    lxd = await connect();
    provider = createLxdProvider({ name: 'lxd-test', client: lxd, readinessTimeoutMs: 60_000 });
  });

  after(async () => {
    await removeRun(lxd);
    for (const fingerprint of downloaded) await lxd.images.delete(fingerprint).catch(() => {});
    await ss?.close();
    provider.close();
    lxd.close();
  });

  test('undo of the instance deletes what the install made, twice, and never a same-named stranger', async () => {
    const name = uniqueName('undo');
    const stages = new FakeStages();
    const state: InstallState = {};
    await stages.run(provider.install(spec(name)), state, { until: 'VM creation > creating VM' });
    assert.equal(await lxd.instances.exists(name), true);
    const undo = stages.undos.find((u) => u.kind === 'lxd.delete-instance');
    assert.ok(undo);
    const handler = provider.undo[undo.kind];
    assert.ok(handler);
    await handler(undo.payload, {});
    assert.equal(await lxd.instances.exists(name), false);
    await handler(undo.payload, {}); // gone already: success

    // Someone else's instance of that name (made between our check and our create) stays.
    await (await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS })).wait();
    await handler(undo.payload, {});
    assert.equal(await lxd.instances.exists(name), true);
    await removeInstance(lxd, name);
  });

  test('an image from a SimpleStreams server is downloaded with its undo registered first, and undone only when unused', async () => {
    ss = await startSimpleStreamsServer();
    const remote = createLxdProvider({
      name: 'lxd-ss',
      client: lxd,
      imageServers: { ss: { url: ss.url, protocol: 'simplestreams' } },
    });
    const name = uniqueName('ss');
    const stages = new FakeStages();
    const state: InstallState = {};
    let imageAtRegistration: boolean | undefined;
    stages.onRegister = async (u) => {
      if (u.kind === 'lxd.delete-image') imageAtRegistration = await lxd.images.exists(String(u.payload.fingerprint));
    };
    const outcomes = await stages.run(remote.install(spec(name, { image: `ss:${ss.alias}` })), state, {
      until: 'VM creation > creating VM',
    });
    assert.equal(state.imageUrl, ss.url);
    assert.equal(state.imageVolume, ss.fingerprint);
    downloaded.add(ss.fingerprint);
    assert.equal(outcomes.get('OS preparation > downloading OS image')?.renamedTo, undefined);
    assert.equal(imageAtRegistration, false);
    const imageUndo = stages.undos.find((u) => u.kind === 'lxd.delete-image');
    assert.deepEqual(imageUndo?.payload, { project: 'default', fingerprint: ss.fingerprint });
    assert.equal(await lxd.images.exists(ss.fingerprint), true);

    // A second install finds it here: no download, no undo of it.
    const again = new FakeStages();
    const second = await again.run(
      remote.install(spec(uniqueName('ss2'), { image: `ss:${ss.alias}` })),
      {},
      {
        until: 'OS preparation > downloading OS image',
      },
    );
    assert.equal(second.get('OS preparation > downloading OS image')?.renamedTo, 'OS preparation > using OS image');
    assert.equal(again.undos.length, 0);

    const deleteImage = remote.undo['lxd.delete-image'];
    const deleteInstance = remote.undo['lxd.delete-instance'];
    assert.ok(deleteImage && deleteInstance && imageUndo);
    await deleteImage(imageUndo.payload, {});
    assert.equal(await lxd.images.exists(ss.fingerprint), true, 'an instance uses it: kept');
    const instanceUndo = stages.undos.find((u) => u.kind === 'lxd.delete-instance');
    assert.ok(instanceUndo);
    await deleteInstance(instanceUndo.payload, {});
    await deleteImage(imageUndo.payload, {});
    assert.equal(await lxd.images.exists(ss.fingerprint), false);
    await deleteImage(imageUndo.payload, {}); // gone already: success
  });

  test('readiness: an instance whose exec cannot answer ends in ReadinessTimeoutError, a cancel in its reason', async () => {
    const name = uniqueName('deaf');
    await (await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS })).wait();
    await lxd.instances.start(name);
    // No `true` to run: exec answers 127 for ever, which is not ready.
    await lxd.instances.files.delete(name, '/bin/true');
    const ref: LxdRef = { type: 'lxd', project: 'default', name, kind: 'container' };

    await assert.rejects(provider.waitReady(ref, { timeout: 1_500 }), ReadinessTimeoutError);

    const stages = new FakeStages();
    const plan = provider.install(spec(name));
    await assert.rejects(
      plan['VM initialization > waiting for ready'](stages.context(AbortSignal.timeout(1_500)), {}),
      ReadinessTimeoutError,
    );
    assert.ok(stages.logs.some((l) => /not ready yet/.test(l)));

    const cancel = new AbortController();
    setTimeout(() => cancel.abort(new CancelledError({ message: 'the operation was cancelled' })), 500);
    await assert.rejects(
      plan['VM initialization > waiting for ready'](stages.context(cancel.signal), {}),
      CancelledError,
    );
  });

  test('SSH initialization on busybox (no adduser, no chpasswd): user, shadow hash and key by the files API', async () => {
    const name = uniqueName('ssh');
    const stages = new FakeStages();
    const state: InstallState = {};
    const outcomes = await stages.run(
      provider.install(spec(name, { user: 'alice', password: PASSWORD, sshPublicKey: KEY })),
      state,
    );
    assert.match(outcomes.get('VM initialization > SSH initialization')?.message ?? '', /alice/);
    const pull = async (path: string) => {
      const f = await lxd.instances.files.pull(name, path);
      assert.equal(f.type, 'file');
      return f;
    };
    const passwd = (await pull('/etc/passwd')).content.toString();
    assert.match(passwd, /^alice:x:1000:1000::\/home\/alice:\/bin\/sh$/m);
    const shadow = await pull('/etc/shadow');
    assert.equal(shadow.mode, 0o600);
    const line = shadow.content
      .toString()
      .split('\n')
      .find((l) => l.startsWith('alice:'));
    const hash = line?.split(':')[1] ?? '';
    const salt = hash.split('$')[2] ?? '';
    const expected = execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: `${PASSWORD}\n` });
    assert.equal(hash, expected.toString().trim());
    assert.match(shadow.content.toString(), /^root:\*:/m);
    const keys = await pull('/home/alice/.ssh/authorized_keys');
    assert.equal(keys.content.toString(), `${KEY}\n`);
    assert.equal(keys.mode, 0o600);
    assert.equal(keys.uid, 1000);

    // Again (a resumed install): nothing doubled.
    await provider
      .install(spec(name, { user: 'alice', password: PASSWORD, sshPublicKey: KEY }))
      ['VM initialization > SSH initialization'](stages.context(), state);
    assert.equal((await pull('/home/alice/.ssh/authorized_keys')).content.toString(), `${KEY}\n`);
    assert.equal((await pull('/etc/passwd')).content.toString().match(/^alice:/gm)?.length, 1);

    assertNoPassword(stages, state);
  });

  test('SSH initialization with the guest tools: useradd, and chpasswd given the password on stdin only', async () => {
    const name = uniqueName('tools');
    await (await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS })).wait();
    await lxd.instances.start(name);
    await provider.waitReady({ type: 'lxd', project: 'default', name, kind: 'container' }, { timeout: 60_000 });
    const script = (body: string) => ({ content: `#!/bin/sh\n${body}\n`, mode: 0o755 });
    const useradd = script(
      'echo "$*" > /root/useradd.args\nfor u; do :; done\necho "$u:x:2000:2000::/home/$u:/bin/sh" >> /etc/passwd',
    );
    // A chpasswd that echoes its input on stderr: what it says must reach the log scrubbed.
    const chpasswd = script('cat > /root/chpasswd.in\necho "chpasswd: read $(cat /root/chpasswd.in)" >&2');
    await lxd.instances.files.mkdir(name, '/usr/sbin', { parents: true });
    for (const [path, file] of [
      ['/usr/sbin/useradd', useradd],
      ['/usr/sbin/chpasswd', chpasswd],
    ] as const) {
      await lxd.instances.files.push(name, path, file.content, { mode: file.mode });
    }
    const stages = new FakeStages();
    const state: InstallState = {};
    const outcome = await provider
      .install(spec(name, { user: 'bob', password: PASSWORD }))
      ['VM initialization > SSH initialization'](stages.context(), state);
    assert.match(outcome.message ?? '', /useradd.*chpasswd/);
    const read = async (path: string) => {
      const f = await lxd.instances.files.pull(name, path);
      return f.type === 'file' ? f.content.toString() : '';
    };
    assert.equal(await read('/root/useradd.args'), '-m -s /bin/sh bob\n');
    assert.equal(await read('/root/chpasswd.in'), `bob:${PASSWORD}\n`);
    assert.ok(stages.logs.some((l) => l.includes('chpasswd: read bob:[redacted]')));
    assertNoPassword(stages, state);
  });

  test('a password that cannot be one line is refused without being named', async () => {
    const stages = new FakeStages();
    const bad = `${PASSWORD}\nroot:owned`;
    const plan = provider.install(spec(uniqueName('bad'), { user: 'carol', password: bad }));
    await assert.rejects(
      plan['VM initialization > SSH initialization'](stages.context(), {}),
      (error: Error) => error instanceof InvalidRequestError && !error.message.includes(PASSWORD),
    );
  });

  test('on a managed bridge the pool gives a static address: on the nic, in used(), unique, and not forked', async () => {
    const bridge = `vmpcbr${randomInt(1e4)}`;
    const third = randomInt(2, 250);
    await lxd.networks.create({
      name: bridge,
      type: 'bridge',
      config: { 'ipv4.address': `10.251.${third}.1/24`, 'ipv4.nat': 'false', 'ipv6.address': 'none' },
    });
    try {
      const ip = `10.251.${third}.50`;
      const owners: string[] = [];
      const net = createLxdProvider({
        name: 'lxd-net',
        client: lxd,
        network: {
          bridge,
          pool: async ({ owner }) => {
            owners.push(owner);
            return ip;
          },
        },
        addressWaitMs: 500,
      });
      const name = uniqueName('net');
      const stages = new FakeStages();
      const state: InstallState = {};
      const outcomes = await stages.run(net.install(spec(name)), state);
      assert.equal(outcomes.get('preparation > assigning IP')?.message, `${ip} on ${bridge}`);
      assert.deepEqual(owners, [stages.operationId]);
      assert.equal(state.ipv4, ip);
      const instance = await lxd.instances.get(name);
      assert.deepEqual(instance.devices.eth0, { type: 'nic', network: bridge, name: 'eth0', 'ipv4.address': ip });
      assert.ok((await net.used()).ipv4.has(ip));

      // The same address again: refused before anything is made.
      const twice = net.install(spec(uniqueName('net2')));
      await assert.rejects(twice['preparation > assigning IP'](stages.context(), {}), AlreadyExistsError);
      const outside = net.install(spec(uniqueName('net3')));
      await assert.rejects(
        outside['preparation > assigning IP'](stages.context(), { ipv4: '10.9.9.9' }),
        InvalidRequestError,
      );

      const forked = await net.fork(
        { type: 'lxd', project: 'default', name, kind: 'container' },
        uniqueName('netfork'),
      );
      const copy = await lxd.instances.get(forked.type === 'lxd' ? forked.name : '');
      assert.equal(copy.devices.eth0?.['ipv4.address'], undefined);
      assert.equal(copy.devices.eth0?.network, bridge);
      await net.destroy(forked);
      await net.destroy({ type: 'lxd', project: 'default', name, kind: 'container' });
    } finally {
      await removeRun(lxd);
      await lxd.networks.delete(bridge).catch((error: unknown) => console.error(`bridge ${bridge}:`, error));
      // LXD 5.0.2 leaves the bridge's dnsmasq log behind; the test made the bridge, so it goes too.
      rmSync(join(process.env.LXD_DIR ?? '/var/lib/lxd', 'logs', `dnsmasq.${bridge}.log`), { force: true });
    }
  });
});

/** The password is nowhere a journal could keep it: logs, undo payloads, install state. */
function assertNoPassword(stages: FakeStages, state: InstallState): void {
  assert.ok(!stages.logs.join('\n').includes(PASSWORD), 'password in a log line');
  assert.ok(!JSON.stringify(stages.undos).includes(PASSWORD), 'password in an undo payload');
  assert.ok(!JSON.stringify(state).includes(PASSWORD), 'password in the install state');
}
