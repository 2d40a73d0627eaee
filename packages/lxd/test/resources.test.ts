import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  etagOf,
  InvalidArgumentError,
  LxdClient,
  LxdError,
  NotFoundError,
  OperationFailedError,
  PreconditionFailedError,
  writable,
} from '@vmplane/lxd';
import { makeCertificate } from './support/certs.js';
import { connect, IMAGE_ALIAS, removeInstance, removeLeftoverLogs, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

describe('resource families', () => {
  let lxd: LxdClient;
  before(async () => {
    lxd = await connect();
  });
  after(() => lxd.close());

  test('server: get with ETag, patch a config key back and forth, resources, connection info, extensions', async () => {
    const server = await lxd.server.get();
    assert.equal(server.auth, 'trusted');
    assert.ok(server.api_extensions.includes('instances'));
    assert.ok(lxd.hasExtension('instances'));
    assert.equal(lxd.hasExtension('vmpt-no-such-extension'), false);
    assert.ok(etagOf(server));
    const key = 'images.remote_cache_expiry';
    const before = server.config[key];
    try {
      await lxd.server.patch({ config: { [key]: '7' } }, { etag: etagOf(server) });
      assert.equal((await lxd.server.get()).config[key], '7');
      await assert.rejects(
        lxd.server.patch({ config: { [key]: '8' } }, { etag: etagOf(server) }),
        PreconditionFailedError,
      );
    } finally {
      await lxd.server.patch({ config: { [key]: before ?? '' } });
    }
    const resources = await lxd.server.resources();
    assert.ok(resources.cpu.total >= 1);
    assert.ok(resources.memory.total > 0);
    const info = await lxd.server.connectionInfo();
    assert.equal(info.protocol, 'lxd');
    assert.match(info.url, /^unix:\/\//);
    const untrusted = await lxd.server.untrusted();
    assert.equal(untrusted.api_version, '1.0');
  });

  test('profiles: create, get with ETag, update, rename, conflict, delete', async () => {
    const name = uniqueName('prof');
    let current = name;
    try {
      await lxd.profiles.create({ name, description: 'test profile', config: { 'limits.cpu': '1' } });
      // LXD 5.0 answers a duplicate profile with a 500 (not 409); the error says why.
      await assert.rejects(
        lxd.profiles.create({ name }),
        (e: unknown) => e instanceof LxdError && /already exists/.test(e.message),
      );
      const p = await lxd.profiles.get(name);
      assert.equal(p.config['limits.cpu'], '1');
      await lxd.profiles.update(name, { ...writable.profile(p), description: 'changed' }, { etag: etagOf(p) });
      await assert.rejects(
        lxd.profiles.update(name, { ...writable.profile(p), description: 'stale' }, { etag: etagOf(p) }),
        PreconditionFailedError,
      );
      await lxd.profiles.patch(name, { config: { 'limits.memory': '64MiB' } });
      const renamed = uniqueName('prof2');
      await lxd.profiles.rename(name, renamed);
      current = renamed;
      const r = await lxd.profiles.get(renamed);
      assert.equal(r.description, 'changed');
      assert.equal(r.config['limits.memory'], '64MiB');
      assert.ok((await lxd.profiles.names()).includes(renamed));
      assert.ok((await lxd.profiles.list()).some((x) => x.name === renamed));
    } finally {
      await lxd.profiles.delete(current).catch(() => {});
    }
    assert.equal(await lxd.profiles.exists(current), false);
  });

  test('networks: a bridge with its state and leases', async () => {
    const name = `vmpt${Math.random().toString(36).slice(2, 8)}`;
    try {
      await lxd.networks.create({ name, type: 'bridge', config: { 'ipv4.address': 'none', 'ipv6.address': 'none' } });
      const net = await lxd.networks.get(name);
      assert.equal(net.type, 'bridge');
      assert.equal(net.managed, true);
      await lxd.networks.patch(name, { description: 'vmplane test bridge' });
      assert.equal((await lxd.networks.get(name)).description, 'vmplane test bridge');
      const state = await lxd.networks.state(name);
      assert.equal(state.type, 'broadcast');
      assert.ok(Array.isArray(await lxd.networks.leases(name)));
      assert.ok((await lxd.networks.names()).includes(name));
    } finally {
      await lxd.networks.delete(name).catch(() => {});
    }
    await assert.rejects(lxd.networks.get(name), NotFoundError);
  });

  test('storage: a dir pool, custom volumes created, copied, renamed, snapshotted, deleted', async () => {
    const pool = uniqueName('pool');
    const dir = await mkdtemp(join(tmpdir(), 'vmpt-pool-'));
    try {
      await lxd.storagePools.create({ name: pool, driver: 'dir', config: { source: dir } });
      const p = await lxd.storagePools.get(pool);
      assert.equal(p.driver, 'dir');
      const res = await lxd.storagePools.resources(pool);
      assert.ok(res.space.total > 0);
      await lxd.storagePools.volumes.create(pool, { name: 'vol1', config: {} });
      await lxd.storagePools.volumes.copy(pool, 'vol1', 'vol2');
      await lxd.storagePools.volumes.rename(pool, 'vol2', 'vol3');
      await lxd.storagePools.volumes.createSnapshot(pool, 'vol1', 'snap0');
      assert.deepEqual(await lxd.storagePools.volumes.snapshotNames(pool, 'vol1'), ['snap0']);
      const vols = await lxd.storagePools.volumes.list(pool, { type: 'custom' });
      // LXD lists volume snapshots too, as `volume/snapshot`.
      assert.deepEqual(vols.map((v) => v.name).sort(), ['vol1', 'vol1/snap0', 'vol3']);
      const v = await lxd.storagePools.volumes.get(pool, 'custom', 'vol1');
      await lxd.storagePools.volumes.update(
        pool,
        'custom',
        'vol1',
        { ...writable.storageVolume(v), description: 'd' },
        { etag: etagOf(v) },
      );
      assert.equal((await lxd.storagePools.volumes.get(pool, 'custom', 'vol1')).description, 'd');
      await lxd.storagePools.volumes.deleteSnapshot(pool, 'vol1', 'snap0');
      await lxd.storagePools.volumes.delete(pool, 'custom', 'vol1');
      await lxd.storagePools.volumes.delete(pool, 'custom', 'vol3');
      assert.deepEqual(await lxd.storagePools.volumes.list(pool, { type: 'custom' }), []);
    } finally {
      for (const vol of ['vol1', 'vol2', 'vol3'])
        await lxd.storagePools.volumes.delete(pool, 'custom', vol).catch(() => {});
      await lxd.storagePools.delete(pool).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
    assert.ok((await lxd.storagePools.names()).includes('default'));
  });

  test('projects: create, use for an instance, state, rename, delete', async () => {
    const project = uniqueName('proj');
    let current = project;
    const inst = uniqueName('inproj');
    const scoped = lxd.withProject(project);
    try {
      await lxd.projects.create({
        name: project,
        config: { 'features.images': 'false', 'features.profiles': 'false' },
      });
      await (await scoped.instances.createFromImage(inst, { alias: IMAGE_ALIAS })).wait();
      assert.deepEqual(await scoped.instances.names(), [inst]);
      assert.equal((await lxd.instances.names()).includes(inst), false, 'instances stay in their project');
      const state = await lxd.projects.state(project);
      assert.equal(state.resources.instances?.Usage, 1);
      await scoped.instances.delete(inst);
      const renamed = uniqueName('proj2');
      await lxd.projects.rename(project, renamed);
      current = renamed;
      assert.ok((await lxd.projects.names()).includes(renamed));
    } finally {
      await scoped.instances.delete(inst, { force: true }).catch(() => {});
      removeLeftoverLogs(inst);
      scoped.close();
      await lxd.projects.delete(current).catch(() => {});
    }
  });

  test('no project means none: all projects from a client with a default project, and objects outside projects', async () => {
    const project = uniqueName('noproj');
    const inst = uniqueName('inproj');
    const proxy = await SocketProxy.start();
    const scoped = await LxdClient.connect({ socketPath: proxy.path, project });
    try {
      await lxd.projects.create({
        name: project,
        config: { 'features.images': 'false', 'features.profiles': 'false' },
      });
      await (await scoped.instances.createFromImage(inst, { alias: IMAGE_ALIAS })).wait();
      proxy.requests.length = 0;
      // LXD refuses all-projects together with a project (400): nothing but all-projects is sent.
      const everywhere = await scoped.instances.list({ allProjects: true });
      assert.ok(everywhere.some((i) => i.name === inst && i.project === project));
      assert.ok((await scoped.instances.names({ allProjects: true })).includes(inst));
      assert.ok(Array.isArray(await scoped.operations.list({ allProjects: true })));
      assert.equal((await scoped.projects.state(project)).resources.instances?.Usage, 1);
      assert.equal((await scoped.projects.get(project)).name, project);
      assert.ok((await scoped.projects.names()).includes(project));
      assert.ok(Array.isArray(await scoped.certificates.names()));
      // The default project still applies where it should.
      assert.deepEqual(await scoped.instances.names(), [inst]);
      const lines = proxy.requests.filter((r) => !r.startsWith('GET /1.0/operations/'));
      assert.deepEqual(lines, [
        'GET /1.0/instances?recursion=1&all-projects=true',
        'GET /1.0/instances?all-projects=true',
        'GET /1.0/operations?recursion=1&all-projects=true',
        `GET /1.0/projects/${project}/state`,
        `GET /1.0/projects/${project}`,
        'GET /1.0/projects',
        'GET /1.0/certificates',
        `GET /1.0/instances?project=${project}`,
      ]);
      await assert.rejects(scoped.instances.list({ allProjects: true, project }), InvalidArgumentError);
      await scoped.instances.delete(inst);
    } finally {
      await scoped.instances.delete(inst, { force: true }).catch(() => {});
      removeLeftoverLogs(inst);
      scoped.close();
      await proxy.close();
      await lxd.projects.delete(project).catch(() => {});
    }
  });

  test('cluster: a standalone server says it is not clustered', async () => {
    const cluster = await lxd.cluster.get();
    assert.equal(cluster.enabled, false);
    assert.equal(await lxd.cluster.isClustered(), false);
    await assert.rejects(
      lxd.cluster.members(),
      (e: unknown) => e instanceof LxdError && /not clustered/.test(e.message),
    );
  });

  test('a finished operation keeps its result after LXD has forgotten it', async () => {
    const name = uniqueName('forgot');
    try {
      const op = await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS });
      // LXD drops finished operations about 5 s after they end; look only after that.
      let forgotten = false;
      for (let i = 0; i < 40 && !forgotten; i++) {
        await new Promise((r) => setTimeout(r, 500));
        forgotten = await lxd.operations.get(op.id).then(
          () => false,
          (e: unknown) => e instanceof NotFoundError,
        );
      }
      assert.ok(forgotten, 'LXD still remembers the operation');
      const done = await op.wait();
      assert.equal(done.status, 'Success');
      assert.equal(done.id, op.id);
    } finally {
      await removeInstance(lxd, name);
    }
  });

  test("a failed operation is a typed OperationFailedError with the daemon's reason", async () => {
    const name = uniqueName('opfail');
    try {
      await (await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS })).wait();
      await assert.rejects(lxd.instances.snapshots.restore(name, 'no-such-snapshot'), (e: unknown) => {
        assert.ok(e instanceof OperationFailedError);
        assert.ok(e instanceof LxdError);
        assert.equal(e.code, 400);
        assert.match(e.message, /no-such-snapshot does not exist/);
        return true;
      });
    } finally {
      await removeInstance(lxd, name);
    }
  });

  test('certificates: add a client certificate, rename it, remove it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmpt-cert-'));
    const name = uniqueName('cert');
    try {
      const { cert: pem, fingerprint } = await makeCertificate(dir, name);
      await lxd.certificates.create({
        type: 'client',
        name,
        certificate: Buffer.from(new X509Certificate(pem).raw).toString('base64'),
      });
      const cert = await lxd.certificates.get(fingerprint);
      assert.equal(cert.name, name);
      await lxd.certificates.update(
        fingerprint,
        { ...writable.certificate(cert), name: `${name}-b` },
        { etag: etagOf(cert) },
      );
      assert.equal((await lxd.certificates.get(fingerprint)).name, `${name}-b`);
      assert.ok((await lxd.certificates.names()).includes(fingerprint));
      await lxd.certificates.delete(fingerprint);
      await assert.rejects(lxd.certificates.get(fingerprint), NotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('operations, certificates and warnings list; a finished operation is remembered by its object', async () => {
    const name = uniqueName('ops');
    try {
      const op = await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS });
      const listed = await lxd.operations.ids();
      assert.ok(listed.includes(op.id) || (await op.wait()).id === op.id);
      const done = await op.wait();
      assert.equal(done.status, 'Success');
      // The same result again, long after LXD may have forgotten it.
      assert.equal((await op.wait()).id, op.id);
    } finally {
      await removeInstance(lxd, name);
    }
    assert.ok(Array.isArray(await lxd.certificates.list()));
    assert.ok(Array.isArray(await lxd.warnings.list()));
  });

  test('names are checked before sending', async () => {
    await assert.rejects(lxd.profiles.get('a/b'), InvalidArgumentError);
    await assert.rejects(lxd.networks.rename('vmpt-x', '..'), InvalidArgumentError);
    await assert.rejects(lxd.storagePools.volumes.create('default', { name: '' }), InvalidArgumentError);
  });
});
