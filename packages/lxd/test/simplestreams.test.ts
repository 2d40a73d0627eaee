import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  applyAliases,
  ChecksumMismatchError,
  InvalidArgumentError,
  LxdClient,
  NotFoundError,
  newestVersion,
  type OperationProgress,
  type Products,
  productsToImages,
  ServerError,
  SimpleStreamsClient,
  TimeoutError,
} from '@vmplane/lxd';
import { connect, PREFIX, removeInstance, uniqueName } from './support/lxd.js';
import { type SimpleStreamsServer, startSimpleStreamsServer } from './support/simplestreams-server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A products file with two versions of an amd64 product, an arm64 one and a VM variant. */
function sampleProducts(): Products {
  const item = (ftype: string, path: string, extra: Record<string, string> = {}) => ({
    ftype,
    path,
    size: 10,
    sha256: 'f'.repeat(64),
    ...extra,
  });
  const split = (serial: string, tag: string) => ({
    items: {
      'lxd.tar.xz': item('lxd.tar.xz', `images/${tag}/${serial}/lxd.tar.xz`, {
        combined_squashfs_sha256: `${tag}-sq-${serial}`.padEnd(64, '0'),
        'combined_disk-kvm-img_sha256': `${tag}-vm-${serial}`.padEnd(64, '0'),
      }),
      'root.squashfs': item('squashfs', `images/${tag}/${serial}/rootfs.squashfs`),
    },
  });
  return {
    content_id: 'images',
    datatype: 'image-downloads',
    format: 'products:1.0',
    products: {
      'alpine:3.19:amd64:default': {
        aliases: 'alpine/3.19,alpine/edge',
        arch: 'amd64',
        os: 'Alpine',
        release: '3.19',
        release_title: '3.19',
        variant: 'default',
        versions: {
          '20240101_13:00': split('20240101_13:00', 'amd'),
          '20240102_01:00': split('20240102_01:00', 'amd'),
          '20231231_23:59': split('20231231_23:59', 'amd'),
          // Not a date: skipped as LXD skips it.
          latest: split('latest', 'amd'),
        },
      },
      'alpine:3.19:arm64:default': {
        aliases: 'alpine/3.19',
        arch: 'arm64',
        os: 'Alpine',
        release: '3.19',
        release_title: '3.19',
        variant: 'default',
        versions: { '20240103_00:00': split('20240103_00:00', 'arm') },
      },
      'alpine:3.19:amd64:vm': {
        aliases: 'alpine/3.19/vm',
        arch: 'amd64',
        os: 'Alpine',
        release: '3.19',
        release_title: '3.19',
        variant: 'vm',
        versions: {
          '20240102_00:00': {
            items: {
              'lxd.tar.xz': item('lxd.tar.xz', 'images/vm/lxd.tar.xz', {
                'combined_disk-kvm-img_sha256': 'vm-only'.padEnd(64, '0'),
              }),
              'disk.qcow2': item('disk-kvm.img', 'images/vm/disk.qcow2'),
            },
          },
        },
      },
      'plan9:1:vax:default': {
        aliases: 'plan9',
        arch: 'vax',
        os: 'Plan9',
        release: '1',
        versions: { '20240101': split('20240101', 'vax') },
      },
    },
  };
}

describe('simplestreams parsing (no server)', () => {
  test('products become LXD images: fingerprints per rootfs type, unknown arches and non-date serials skipped', () => {
    const images = productsToImages(sampleProducts(), { server: 'https://example' });
    const fps = images.map((i) => i.image.fingerprint);
    assert.ok(fps.includes('amd-sq-20240102_01:00'.padEnd(64, '0')));
    assert.ok(!fps.some((f) => f.startsWith('amd-vm')), 'no disk-kvm.img item: no VM image from that product');
    assert.ok(!images.some((i) => i.version === 'latest'));
    assert.ok(!images.some((i) => i.image.properties.os === 'Plan9'), 'unknown architecture skipped');
    const vm = images.find((i) => i.image.fingerprint.startsWith('vm-only'));
    assert.equal(vm?.image.type, 'virtual-machine');
    assert.equal(vm?.files.root?.ftype, 'disk-kvm.img');
    const newest = images.find((i) => i.image.fingerprint.startsWith('amd-sq-20240102'));
    assert.equal(newest?.image.architecture, 'x86_64');
    assert.equal(newest?.image.created_at, '2024-01-02T00:00:00Z');
    assert.equal(newest?.image.properties.serial, '20240102_01:00');
    assert.equal(newest?.image.properties.type, 'squashfs');
    assert.equal(newest?.image.size, 20);
    assert.equal(newest?.files.meta.path, 'images/amd/20240102_01:00/lxd.tar.xz');
  });

  test('aliases resolve to the newest version; `alias` for the native arch, `alias/arch` for each', () => {
    const { images, aliases } = applyAliases(productsToImages(sampleProducts()), 'x86_64');
    const find = (name: string, type = 'container') => aliases.filter((a) => a.name === name && a.type === type);
    const short = find('alpine/3.19');
    assert.equal(short[0]?.architecture, 'x86_64', 'native architecture first');
    assert.equal(short[0]?.target, 'amd-sq-20240102_01:00'.padEnd(64, '0'), 'newest serial wins');
    assert.equal(find('alpine/3.19/amd64')[0]?.target, 'amd-sq-20240102_01:00'.padEnd(64, '0'));
    assert.equal(find('alpine/3.19/arm64')[0]?.target, 'arm-sq-20240103_00:00'.padEnd(64, '0'));
    assert.equal(find('alpine/edge')[0]?.target, 'amd-sq-20240102_01:00'.padEnd(64, '0'));
    assert.equal(find('alpine/3.19/vm', 'virtual-machine')[0]?.target, 'vm-only'.padEnd(64, '0'));
    // Only the newest image carries the aliases in its own list; older versions carry none.
    const older = images.find((i) => i.image.fingerprint.startsWith('amd-sq-20240101'));
    assert.deepEqual(older?.image.aliases, []);
    const newest = images.find((i) => i.image.fingerprint.startsWith('amd-sq-20240102'));
    assert.deepEqual(
      newest?.image.aliases.map((a) => a.name),
      ['alpine/3.19', 'alpine/3.19/amd64', 'alpine/edge', 'alpine/edge/amd64'],
    );
    // On an arm64 host the short alias goes to the arm64 image.
    const arm = applyAliases(productsToImages(sampleProducts()), 'aarch64').aliases;
    assert.equal(arm.find((a) => a.name === 'alpine/3.19')?.architecture, 'aarch64');
  });

  test('newest version key', () => {
    const product = sampleProducts().products['alpine:3.19:amd64:default'];
    assert.ok(product);
    assert.equal(newestVersion(product), 'latest');
    delete product.versions.latest;
    assert.equal(newestVersion(product), '20240102_01:00');
  });
});

describe('simplestreams client against a local server', () => {
  let server: SimpleStreamsServer;
  before(async () => {
    server = await startSimpleStreamsServer();
  });
  after(async () => {
    await server.close();
  });

  test('index, images, aliases, resolve, download with sha256 verification', async () => {
    const ss = LxdClient.connectSimpleStreams(server.url);
    try {
      const index = await ss.index();
      assert.equal(index.index.images?.path, 'streams/v1/images.json');
      const images = await ss.images();
      assert.equal(images.length, 1);
      assert.equal(images[0]?.fingerprint, server.fingerprint);
      const alias = await ss.getAlias(server.alias);
      assert.equal(alias.target, server.fingerprint);
      assert.equal((await ss.getAlias(`${server.alias}/amd64`)).target, server.fingerprint);
      assert.ok((await ss.aliases()).some((a) => a.name === server.alias));
      await assert.rejects(ss.getAlias(`${PREFIX}missing`), NotFoundError);
      assert.equal((await ss.getImage(server.fingerprint.slice(0, 10))).fingerprint, server.fingerprint);

      const progress: number[] = [];
      const got = await ss.download(server.alias, { onProgress: (p) => progress.push(p.percent ?? -1) });
      const version = server.versions[0];
      assert.ok(version && got.metadata.equals(version.metadata));
      assert.ok(got.rootfs?.equals(server.rootfs));
      assert.equal(progress.at(-1), 100);

      // A newer version appears after refresh() and the alias follows it.
      const next = server.publish();
      assert.equal((await ss.getAlias(server.alias)).target, version.fingerprint, 'cached until refresh');
      ss.refresh();
      assert.equal((await ss.getAlias(server.alias)).target, next.fingerprint);
      assert.equal((await ss.images()).length, 2);
    } finally {
      ss.close();
    }
  });

  test('a file that does not match its sha256 fails with ChecksumMismatchError', async () => {
    const bad = await startSimpleStreamsServer({ corruptRootfsHash: true });
    const ss = LxdClient.connectSimpleStreams(bad.url);
    try {
      await assert.rejects(ss.download(bad.alias), (e: unknown) => {
        assert.ok(e instanceof ChecksumMismatchError);
        assert.equal(e.actual, sha(bad.rootfs));
        return true;
      });
    } finally {
      ss.close();
      await bad.close();
    }
  });

  test('the default timeout bounds reading the index and a download until it begins, not the download', async () => {
    const slow = await startSimpleStreamsServer({ throttleMs: 80 });
    const ss = new SimpleStreamsClient(slow.url, { timeout: 300 });
    try {
      // The server pauses 80 ms before each 64 KiB of the rootfs: the download outlasts 300 ms.
      assert.ok(Math.ceil(slow.rootfs.length / 65536) * 80 > 3 * 300, 'the rootfs is large enough to be slow');
      const got = await ss.download(slow.alias);
      assert.ok(got.rootfs?.equals(slow.rootfs));
    } finally {
      ss.close();
      await slow.close();
    }
  });

  test('Retry-After is honoured, a long one is not waited for, and a silent server times out', async () => {
    let answers: ((res: ServerResponse) => void)[] = [];
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      const next = answers.shift();
      if (next) next(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const index = (res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ format: 'index:1.0', index: {} }));
    };
    const busy = (retryAfter: string) => (res: ServerResponse) => {
      res.writeHead(503, { 'Retry-After': retryAfter });
      res.end('busy');
    };
    try {
      answers = [busy('1'), index];
      const ss = new SimpleStreamsClient(url, { retry: { attempts: 3, initial: 5, max: 10 } });
      assert.deepEqual((await ss.index()).index, {});
      assert.equal(seen.length, 2);
      ss.close();
      seen.length = 0;
      answers = [busy('120'), index];
      const impatient = new SimpleStreamsClient(url, { retry: { attempts: 3, initial: 5 } });
      await assert.rejects(impatient.index(), (e: unknown) => e instanceof ServerError && e.retryAfter === 120);
      assert.equal(seen.length, 1, 'not retried');
      impatient.close();
      answers = [];
      const silent = new SimpleStreamsClient(url, { timeout: 100, retry: { attempts: 1 } });
      await assert.rejects(silent.index(), TimeoutError);
      await assert.rejects(silent.index({ timeout: -1 }), InvalidArgumentError);
      silent.close();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('bad URLs are refused locally', () => {
    assert.throws(() => LxdClient.connectSimpleStreams('ftp://x'), InvalidArgumentError);
    assert.throws(() => LxdClient.connectSimpleStreams('not a url'), InvalidArgumentError);
  });
});

describe('copy from SimpleStreams into LXD', () => {
  let lxd: LxdClient;
  const fingerprints = new Set<string>();
  const aliases = new Set<string>();
  const servers: SimpleStreamsServer[] = [];

  before(async () => {
    lxd = await connect();
  });
  after(async () => {
    for (const a of aliases) await lxd.images.aliases.delete(a).catch(() => {});
    // Every fingerprint here is unique to a test server's run: deleting it touches nothing else.
    for (const fp of fingerprints) await lxd.images.delete(fp).catch(() => {});
    for (const s of servers) await s.close();
    lxd.close();
  });

  test('copy over http with progress and an alias, then refresh picks up a newer version', async () => {
    const server = await startSimpleStreamsServer({ throttleMs: 40 });
    servers.push(server);
    for (const v of [server.fingerprint]) fingerprints.add(v);
    const alias = uniqueName('ss-copy');
    aliases.add(alias);
    const seen: OperationProgress[] = [];
    const result = await lxd.images.copyFrom(
      { server: server.url, protocol: 'simplestreams', alias: server.alias },
      { aliases: [alias], autoUpdate: true, onProgress: (p) => seen.push(p) },
    );
    assert.equal(result.fingerprint, server.fingerprint);
    assert.deepEqual(result.aliases, [alias]);
    assert.ok(
      server.requests.some((r) => r.endsWith('rootfs.squashfs')),
      'LXD downloaded the rootfs from us',
    );
    assert.ok(seen.length > 0, 'progress was reported');
    const image = await lxd.images.get(result.fingerprint);
    assert.equal(image.auto_update, true);
    assert.equal(image.update_source?.protocol, 'simplestreams');
    assert.equal((await lxd.images.aliases.get(alias)).target, result.fingerprint);

    assert.equal(await lxd.images.refresh(result.fingerprint), false, 'nothing newer yet');
    const next = server.publish();
    fingerprints.add(next.fingerprint);
    // LXD keeps a server's index for an hour; dropping its cache of our server makes it look again.
    server.forgetInLxdCache();
    assert.equal(await lxd.images.refresh(result.fingerprint), true, 'a newer version replaced it');
    assert.equal((await lxd.images.aliases.get(alias)).target, next.fingerprint, 'the alias moved to the new image');
  });

  test('copy over https with the server certificate', async () => {
    const server = await startSimpleStreamsServer({ https: true });
    servers.push(server);
    fingerprints.add(server.fingerprint);
    const result = await lxd.images.copyFrom({
      server: server.url,
      protocol: 'simplestreams',
      alias: server.alias,
      certificate: server.certificate,
    });
    assert.equal(result.fingerprint, server.fingerprint);
    // The client side reads it too when pinned to that certificate.
    const ss = new SimpleStreamsClient(server.url, { serverCert: server.certificate });
    try {
      assert.equal((await ss.getAlias(server.alias)).target, server.fingerprint);
    } finally {
      ss.close();
    }
  });

  test('an instance created straight from the SimpleStreams server runs', async () => {
    const server = await startSimpleStreamsServer();
    servers.push(server);
    fingerprints.add(server.fingerprint);
    const name = uniqueName('ss-inst');
    try {
      const op = await lxd.instances.createFromImage(name, {
        server: server.url,
        protocol: 'simplestreams',
        alias: server.alias,
      });
      await op.wait();
      await lxd.instances.start(name);
      const r = await lxd.instances.exec(name, { command: ['true'] });
      assert.equal(r.exitCode, 0);
      const cached = await lxd.images.get(server.fingerprint);
      assert.equal(cached.cached, true, 'LXD cached the image it pulled');
    } finally {
      await removeInstance(lxd, name);
    }
  });
});
