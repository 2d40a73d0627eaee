import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  checkName as exportedCheckName,
  InvalidArgumentError,
  LxdClient,
  LxdTransport,
  NotFoundError,
} from '@vmplane/lxd';
import {
  checkInstancePath,
  checkName,
  checkResolvablePath,
  decodeLeniently,
  listEncodingOf,
  type NameKind,
  nameFromUrl,
  namesFromUrls,
} from '../src/names.js';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

const refusedEverywhere = ['', '.', '..', 'a\0b', 'a\nb', 'a\tb', 'a\x7fb', '\ud800', 'a\udc00b'];

/** Names each kind must refuse, beyond the ones every kind refuses, with why (for the test title). */
const refused: Record<NameKind, string[]> = {
  instance: ['1a', '-a', 'a-', 'a_b', 'a.b', 'a b', 'é', 'a'.repeat(64), 'a/b'],
  snapshot: ['a%2Fb', '100%', '%', 'a b', 'a?b', 'a&b', 'a+b', 'a/b', 'x'.repeat(256), 'é'.repeat(128)],
  backup: ['a/b', 'x'.repeat(256)],
  'image alias': [],
  profile: ['a/b'],
  project: ['a b', 'a_b', "a'b", 'a"b', '*', 'a/b'],
  network: ['a b', 'a%b', 'é1', 'a/b', 'abcdefghijklmnop', 'a:b', 'a@b'],
  'storage pool': ['a b', 'a\u00a0b', 'a\u3000b', 'a/b', 'x'.repeat(256)],
  'storage volume': ['a/b', 'x'.repeat(256)],
  'volume snapshot': ['a b', 'a\u2028b', 'a/b', 'x'.repeat(256)],
  'cluster member': ['a/b'],
  'certificate name': [],
  'log file': ['a/b'],
};

/** Names each kind takes, each of which LXD 5.0.2 creates, returns, lists and deletes under that name. */
const accepted: Record<NameKind, string[]> = {
  instance: ['a', 'A1', 'web-01', 'a'.repeat(63)],
  snapshot: ['a#b', 'a=b', 'a;b', 'a:b', "a'b", 'a\\b', 'é日本😀', '-a', '.a', '...', '*', 'a\u00a0b', 'x'.repeat(255)],
  backup: ['a%2Fb', '100%', 'a b', 'a?b', 'a#b', '-a', 'x'.repeat(255)],
  'image alias': ['a/b', 'debian/12', 'a%2Fb', '100%', 'a b', 'a?b', '...', 'é', 'x'.repeat(300)],
  profile: ['a%2Fb', '100%', 'a b', 'a?b', 'a#b', '...', 'é'],
  project: ['a%2Fb', '100%', 'a?b', 'a#b', 'é'],
  network: ['a1', 'a.b', 'a_b', 'a-b', '-a', '.a', '1a', 'abcdefghijklmno'],
  'storage pool': ['a%2Fb', '100%', 'a?b', 'a&b', 'a\u200bb', 'é', 'x'.repeat(255)],
  'storage volume': ['a%2Fb', '100%', 'a b', 'a?b', 'é'],
  'volume snapshot': ['a%2Fb', '100%', 'a?b', 'é', 'x'.repeat(255)],
  'cluster member': ['node-1', 'a b'],
  'certificate name': ['a/b', 'my laptop', 'é'],
  'log file': ['lxc.log', 'exec_0d3f.stdout'],
};

describe('names: the rules', () => {
  for (const kind of Object.keys(refused) as NameKind[]) {
    test(`${kind}: refused locally, naming the argument`, () => {
      for (const name of [...refusedEverywhere, ...refused[kind]]) {
        assert.throws(
          () => checkName(kind, name, 'the-arg'),
          (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'the-arg' && e.backend === 'lxd',
          `${kind} ${JSON.stringify(name)} was accepted`,
        );
      }
      for (const value of [undefined, null, 7, {}, ['a']]) {
        assert.throws(() => checkName(kind, value), InvalidArgumentError, `${kind} took ${String(value)}`);
      }
    });
    test(`${kind}: accepted unchanged`, () => {
      for (const name of accepted[kind]) assert.equal(checkName(kind, name), name, `${kind} ${JSON.stringify(name)}`);
    });
  }

  test('a message names the kind and quotes the value, cut short', () => {
    const long = `%${'y'.repeat(500)}`;
    assert.throws(
      () => checkName('snapshot', long),
      (e: Error) => e.message.startsWith('Invalid snapshot name "%yyy') && e.message.length < 300,
    );
  });

  test('instance paths: absolute, no NUL, no lone surrogate, no ".." (realpath may resolve "..")', () => {
    for (const p of ['', 'etc/passwd', './x', '/a/../b', '/..', '/a\0b', '/\ud800', 7]) {
      assert.throws(() => checkInstancePath(p), InvalidArgumentError, JSON.stringify(p));
    }
    for (const p of ['/', '/etc/passwd', '/a/./b', '//a', '/a..b/c', '/é']) assert.equal(checkInstancePath(p), p);
    assert.equal(checkResolvablePath('/a/../b'), '/a/../b');
    for (const p of ['a/../b', '/a\0', '../x']) assert.throws(() => checkResolvablePath(p), InvalidArgumentError);
  });
});

describe('names: out of list URLs', () => {
  const twice = (s: string) => encodeURIComponent(encodeURIComponent(s));

  test('never throws, whatever the URL holds', () => {
    for (const bad of ['100%', '%', '%zz', '%E0%A4', '%C3', 'a%2', '%%41', '%ED%A0%80']) {
      for (const encoding of ['raw', 'escaped', 'double-escaped'] as const) {
        assert.equal(typeof nameFromUrl(`/1.0/profiles/${bad}`, encoding), 'string');
      }
    }
    assert.equal(decodeLeniently('100%'), '100%');
    assert.equal(decodeLeniently('a%C3%A9%C3b'), 'aé%C3b');
    assert.equal(decodeLeniently('%F0%9F%98%80%zz'), '😀%zz');
  });

  test('each encoding gives back the names LXD was given', () => {
    const names = ['a b', 'a%2Fb', '100%', 'a?b', 'a#b', 'é日本😀', 'a/b', '%C3'];
    assert.deepEqual(
      namesFromUrls(
        names.map((n) => `/1.0/profiles/${twice(n)}`),
        'double-escaped',
      ),
      names,
    );
    assert.deepEqual(
      namesFromUrls(
        names.map((n) => `/1.0/networks/${encodeURIComponent(n)}?project=p`),
        'escaped',
      ),
      names,
    );
    const rawNames = names.filter((n) => !n.includes('/'));
    assert.deepEqual(
      namesFromUrls(
        rawNames.map((n) => `/1.0/instances/c/backups/${n}`),
        'raw',
      ),
      rawNames,
    );
    assert.equal(nameFromUrl('/1.0/instances/c/backups/a?b?project=p1', 'raw'), 'a?b');
  });
});

interface Kind {
  kind: NameKind;
  /** Where the objects are listed, and under which each one lives. */
  base: string;
  create(name: string): Promise<unknown>;
}

describe('names: round trips through the daemon', () => {
  let lxd: LxdClient;
  let transport: LxdTransport;
  const instance = uniqueName('names');
  const volume = uniqueName('names-vol');
  const tag = randomBytes(2).toString('hex');
  let fingerprint = '';

  /** A request whose async answer is waited for and whose failure is thrown. */
  async function send(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<void> {
    const r = await transport.request<{ id: string }>({ method, path, body });
    if (r.type !== 'async') return;
    const done = await transport.request<{ status: string; err: string }>({
      method: 'GET',
      path: `/1.0/operations/${encodeURIComponent(r.metadata.id)}/wait`,
      query: { timeout: 60 },
      project: null,
    });
    if (done.metadata.status !== 'Success') throw new Error(done.metadata.err);
  }

  const kinds = (): Kind[] => [
    {
      kind: 'snapshot',
      base: `/1.0/instances/${instance}/snapshots`,
      create: (name) => send('POST', `/1.0/instances/${instance}/snapshots`, { name }),
    },
    {
      kind: 'backup',
      base: `/1.0/instances/${instance}/backups`,
      create: (name) => send('POST', `/1.0/instances/${instance}/backups`, { name }),
    },
    {
      kind: 'image alias',
      base: '/1.0/images/aliases',
      create: (name) => send('POST', '/1.0/images/aliases', { name, target: fingerprint }),
    },
    { kind: 'profile', base: '/1.0/profiles', create: (name) => send('POST', '/1.0/profiles', { name }) },
    {
      kind: 'project',
      base: '/1.0/projects',
      create: (name) =>
        send('POST', '/1.0/projects', {
          name,
          config: { 'features.images': 'false', 'features.profiles': 'false', 'features.storage.volumes': 'false' },
        }),
    },
    {
      kind: 'network',
      base: '/1.0/networks',
      create: (name) =>
        send('POST', '/1.0/networks', {
          name,
          type: 'bridge',
          config: { 'ipv4.address': 'none', 'ipv6.address': 'none' },
        }),
    },
    {
      kind: 'storage pool',
      base: '/1.0/storage-pools',
      create: (name) => send('POST', '/1.0/storage-pools', { name, driver: 'dir' }),
    },
    {
      kind: 'storage volume',
      base: '/1.0/storage-pools/default/volumes/custom',
      create: (name) => send('POST', '/1.0/storage-pools/default/volumes/custom', { name, type: 'custom' }),
    },
    {
      kind: 'volume snapshot',
      base: `/1.0/storage-pools/default/volumes/custom/${volume}/snapshots`,
      create: (name) => send('POST', `/1.0/storage-pools/default/volumes/custom/${volume}/snapshots`, { name }),
    },
  ];

  /** Our names for a kind: a unique prefix plus the tricky part, within the kind's limits. */
  function ours(kind: NameKind, tricky: string): string {
    if (kind === 'network') return `vt${tag}${tricky}`.slice(0, 15);
    if (tricky.length > 200) return `vmpt-${tag}${tricky}`.slice(0, tricky.length);
    return `vmpt-${tag}-${tricky}`;
  }

  before(async () => {
    lxd = await connect();
    transport = lxd.transport;
    await createInstance(lxd, instance, { start: false });
    await send('POST', '/1.0/storage-pools/default/volumes/custom', { name: volume, type: 'custom' });
    fingerprint = (await lxd.images.list())[0]?.fingerprint ?? '';
  });
  after(async () => {
    await send('DELETE', `/1.0/storage-pools/default/volumes/custom/${volume}`).catch((e) => console.error(e));
    await removeInstance(lxd, instance);
    lxd.close();
  });

  for (const kindName of [
    'snapshot',
    'backup',
    'image alias',
    'profile',
    'project',
    'network',
    'storage pool',
    'storage volume',
    'volume snapshot',
  ] as const) {
    test(`${kindName}: every accepted name is created, read, listed and deleted under that name`, async () => {
      const kind = kinds().find((k) => k.kind === kindName);
      assert.ok(kind);
      const tricky = accepted[kindName].filter((n) => kindName !== 'network' || n.length <= 9);
      for (const part of tricky) {
        const name = checkName(kindName, ours(kindName, part));
        const item: string = `${kind.base}/${encodeURIComponent(name)}`;
        let created = false;
        try {
          await kind.create(name);
          created = true;
          const got: { metadata: { name: string } } = await transport.request<{ name: string }>({
            method: 'GET',
            path: item,
          });
          assert.equal(got.metadata.name, name, `read back ${JSON.stringify(name)}`);
          const urls = (await transport.request<string[]>({ method: 'GET', path: kind.base })).metadata;
          assert.ok(
            namesFromUrls(urls, listEncodingOf(kindName)).includes(name),
            `${JSON.stringify(name)} not among the listed names`,
          );
          await send('DELETE', item);
          created = false;
          await assert.rejects(transport.request({ method: 'GET', path: item }), NotFoundError);
        } finally {
          if (created) await send('DELETE', item).catch((e) => console.error(`cleanup ${name}:`, e));
        }
      }
    });
  }

  test("what the rules refuse is what LXD breaks: a snapshot with '%' is created, then unreachable", async () => {
    const name = ours('snapshot', 'a%2Fb');
    assert.throws(() => checkName('snapshot', name), InvalidArgumentError);
    // Sent raw, past the rule: LXD makes it, then looks for "a/b" (the instance's deletion removes it).
    await send('POST', `/1.0/instances/${instance}/snapshots`, { name });
    await assert.rejects(
      transport.request({ method: 'GET', path: `/1.0/instances/${instance}/snapshots/${encodeURIComponent(name)}` }),
      NotFoundError,
    );
    const urls = (await transport.request<string[]>({ method: 'GET', path: `/1.0/instances/${instance}/snapshots` }))
      .metadata;
    assert.ok(namesFromUrls(urls, 'raw').includes(name), 'listed raw');
    assert.doesNotThrow(() => namesFromUrls([...urls, `/1.0/instances/${instance}/snapshots/100%`]));
  });

  test('what the rules refuse is what LXD breaks: a NUL cuts a profile name short', async () => {
    const name = ours('profile', 'cut');
    assert.throws(() => checkName('profile', `${name}\0tail`), InvalidArgumentError);
    try {
      await send('POST', '/1.0/profiles', { name: `${name}\0tail` });
      const got = await transport.request<{ name: string }>({ method: 'GET', path: `/1.0/profiles/${name}` });
      assert.equal(got.metadata.name, name);
    } finally {
      await send('DELETE', `/1.0/profiles/${name}`).catch(() => {});
    }
  });
});

describe('names: refused at the resource methods, before anything is sent', () => {
  let proxy: SocketProxy;
  let lxd: LxdClient;
  // Nothing is created: every call below must fail before a byte reaches the daemon.
  const inst = uniqueName('never');
  const fp = 'a'.repeat(64);

  before(async () => {
    proxy = await SocketProxy.start();
    lxd = await LxdClient.connect({ socketPath: proxy.path, timeout: 10_000 });
  });
  after(async () => {
    lxd.close();
    await proxy.close();
  });

  /** Each call, with a name its kind refuses, and the argument the error must name. */
  const calls = (): [string, string, () => Promise<unknown>][] => [
    ['snapshots.get', 'snapshot', () => lxd.instances.snapshots.get(inst, 'a%2Fb')],
    ['snapshots.create', 'snapshot', () => lxd.instances.snapshots.create(inst, { name: 'a%2Fb' })],
    ['snapshots.createOperation', 'snapshot', () => lxd.instances.snapshots.createOperation(inst, { name: 'a b' })],
    ['snapshots.rename', 'newName', () => lxd.instances.snapshots.rename(inst, 's0', '100%')],
    ['snapshots.restore', 'snapshot', () => lxd.instances.snapshots.restore(inst, 'a+b')],
    ['backups.get', 'backup', () => lxd.instances.backups.get(inst, 'a/b')],
    ['backups.create', 'backup', () => lxd.instances.backups.create(inst, { name: 'x'.repeat(256) })],
    ['backups.rename', 'newName', () => lxd.instances.backups.rename(inst, 'b0', '..')],
    ['images.aliases.create', 'alias', () => lxd.images.aliases.create({ name: '..', target: fp })],
    ['images.aliases.get', 'alias', () => lxd.images.aliases.get('.')],
    ['images.aliases.rename', 'newName', () => lxd.images.aliases.rename('vmpt-alias', '..')],
    ['images.publish', 'snapshot', () => lxd.images.publish({ instance: inst, snapshot: 'a%2Fb' })],
    ['profiles.get', 'name', () => lxd.profiles.get('a/b')],
    ['profiles.rename', 'newName', () => lxd.profiles.rename('vmpt-profile', '..')],
    ['networks.get', 'name', () => lxd.networks.get('abcdefghijklmnop')],
    ['networks.rename', 'newName', () => lxd.networks.rename('vmpt-net', 'a b')],
    ['projects.get', 'name', () => lxd.projects.get('a_b')],
    ['storagePools.get', 'name', () => lxd.storagePools.get('a b')],
    ['volumes.get', 'pool', () => lxd.storagePools.volumes.get('a\u00a0b', 'custom', 'v')],
    ['volumes.create', 'name', () => lxd.storagePools.volumes.create('default', { name: 'x'.repeat(256) })],
    ['volumes.copy', 'target', () => lxd.storagePools.volumes.copy('default', 'v', 'a/b')],
    ['volumes.rename', 'newName', () => lxd.storagePools.volumes.rename('default', 'v', '..')],
    ['volumes.createSnapshot', 'snapshot', () => lxd.storagePools.volumes.createSnapshot('default', 'v', 'a b')],
    ['volumes.getSnapshot', 'snapshot', () => lxd.storagePools.volumes.getSnapshot('default', 'v', 'a\u2028b')],
    ['volumes.deleteSnapshot', 'snapshot', () => lxd.storagePools.volumes.deleteSnapshot('default', 'v', 'a/b')],
    ['logs.get', 'file', () => lxd.instances.logs.get(inst, 'a/b')],
    ['cluster.member', 'member', () => lxd.cluster.member('a/b')],
    ['cluster.updateMember', 'member', () => lxd.cluster.updateMember('..', { description: 'x' })],
    ['certificates.createToken', 'name', () => lxd.certificates.createToken('a\nb')],
    ['importBackup', 'pool', () => lxd.instances.importBackup(Buffer.from('x'), { pool: 'a b' })],
    ["a call's project", 'project', () => lxd.profiles.names({ project: 'a b' })],
    [
      "a call's project (operation)",
      'project',
      () => lxd.instances.snapshots.create(inst, { name: 's' }, { project: '*' }),
    ],
  ];

  test('each kind: an InvalidArgumentError naming the argument, and no byte sent', async () => {
    for (const [what, argument, call] of calls()) {
      const before = proxy.bytesFromClients;
      await assert.rejects(
        call(),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument,
        `${what}: not refused as ${argument}`,
      );
      assert.equal(proxy.bytesFromClients, before, `${what}: something reached the daemon`);
    }
    // The same client still talks to the daemon: the refusals were the client's, not a dead socket.
    const sent = proxy.bytesFromClients;
    assert.ok(Array.isArray(await lxd.profiles.names()));
    assert.ok(proxy.bytesFromClients > sent);
  });

  test('a project is checked where it is given: transports, withProject, events', () => {
    const before = proxy.bytesFromClients;
    const refusedAsProject = (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'project';
    assert.throws(() => lxd.withProject('a_b'), refusedAsProject);
    assert.throws(() => new LxdTransport({ socketPath: proxy.path, project: "a'b" }), refusedAsProject);
    assert.throws(() => lxd.events({ project: 'a b' }), refusedAsProject);
    assert.equal(proxy.bytesFromClients, before);
    // Names LXD makes projects under pass, and the package's checkName is the one tested above.
    assert.equal(lxd.withProject('vmpt-p1').transport.project, 'vmpt-p1');
    assert.equal(exportedCheckName, checkName);
  });
});
