import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ApiError,
  aggregateCluster,
  aggregateStorage,
  type ClusterResource,
  LruCache,
  NotFoundError,
  normaliseBooleans,
  OperationFailedError,
  ProxmoxError,
  TfaRequiredError,
  UnauthorizedError,
  ValidationError,
} from '@vmplane/proxmox';

test('ProxmoxError matches any API error from this backend, alongside its status class', () => {
  const nf = new NotFoundError({ status: 404, backend: 'proxmox', message: 'no such VM' });
  assert.ok(nf instanceof ProxmoxError);
  assert.ok(nf instanceof NotFoundError);
  const other = new NotFoundError({ status: 404, backend: 'lxd', message: 'x' });
  assert.equal(other instanceof ProxmoxError, false);
  const failed = new OperationFailedError({ status: 500, backend: 'proxmox', message: 'x', operationId: 'UPID:...' });
  assert.ok(failed instanceof ProxmoxError);
  assert.equal(new Error('x') instanceof ProxmoxError, false);
  const tfa = new TfaRequiredError({ message: 'needs TFA', methods: ['totp'] });
  assert.ok(tfa instanceof UnauthorizedError);
  assert.ok(tfa instanceof ProxmoxError);
  assert.equal(tfa.status, 401);
  assert.ok(
    new ValidationError({ status: 400, backend: 'proxmox', message: 'x', errors: { a: 'b' } }) instanceof ApiError,
  );
});

test('1/0 under boolean keys become booleans; other numbers stay', () => {
  const data = normaliseBooleans([
    { type: 'cluster', quorate: 1, nodes: 3, version: 1 },
    { type: 'node', online: 0, local: 1, nodeid: 1 },
    { exited: 1, exitcode: 0, 'out-truncated': 0 },
  ]);
  assert.deepEqual(data, [
    { type: 'cluster', quorate: true, nodes: 3, version: 1 },
    { type: 'node', online: false, local: true, nodeid: 1 },
    { exited: true, exitcode: 0, 'out-truncated': false },
  ]);
});

const storage = (node: string, id: string, shared: boolean, disk: number, maxdisk: number): ClusterResource => ({
  id: `storage/${node}/${id}`,
  type: 'storage',
  node,
  storage: id,
  shared,
  disk,
  maxdisk,
  status: 'available',
});

test('storage aggregation counts a shared storage once and local storages per node', () => {
  const resources = [
    storage('pve1', 'local', false, 10, 100),
    storage('pve2', 'local', false, 20, 100),
    storage('pve1', 'ceph', true, 500, 1000),
    storage('pve2', 'ceph', true, 500, 1000),
    storage('pve3', 'ceph', true, 500, 1000),
  ];
  const agg = aggregateStorage(resources);
  assert.equal(agg.length, 3);
  const ceph = agg.find((s) => s.storage === 'ceph');
  assert.deepEqual(ceph?.nodes, ['pve1', 'pve2', 'pve3']);
  const cluster = aggregateCluster([], resources);
  assert.equal(cluster.storage.total, 1200);
  assert.equal(cluster.storage.used, 530);
  assert.equal(cluster.storage.count, 3);
});

test('aggregated cluster: totals over online nodes, guests from resources, frozen', () => {
  const cluster = aggregateCluster(
    [
      { type: 'cluster', id: 'cluster', name: 'lab', quorate: true, nodes: 2, version: 4 },
      { type: 'node', id: 'node/pve1', name: 'pve1', online: true, ip: '10.0.0.1', local: true },
      { type: 'node', id: 'node/pve2', name: 'pve2', online: false, ip: '10.0.0.2' },
    ],
    [
      { id: 'node/pve1', type: 'node', node: 'pve1', status: 'online', cpu: 0.5, maxcpu: 8, mem: 4, maxmem: 16 },
      { id: 'node/pve2', type: 'node', node: 'pve2', status: 'offline', maxcpu: 8, maxmem: 16 },
      { id: 'qemu/101', type: 'qemu', node: 'pve1', vmid: 101, name: 'b', status: 'running', tags: 'a;b' },
      { id: 'lxc/100', type: 'lxc', node: 'pve1', vmid: 100, name: 'a', status: 'stopped', template: true },
    ],
  );
  assert.equal(cluster.name, 'lab');
  assert.equal(cluster.quorate, true);
  assert.equal(cluster.totalNodes, 2);
  assert.equal(cluster.onlineNodes, 1);
  assert.equal(cluster.cpu.total, 8);
  assert.equal(cluster.cpu.usage, 0.5);
  assert.deepEqual(cluster.memory, { total: 16, used: 4 });
  assert.deepEqual(
    cluster.guests.map((g) => [g.vmid, g.type, g.enriched]),
    [
      [100, 'lxc', false],
      [101, 'qemu', false],
    ],
  );
  assert.deepEqual(cluster.guests[1]?.tags, ['a', 'b']);
  assert.ok(Object.isFrozen(cluster) && Object.isFrozen(cluster.guests) && Object.isFrozen(cluster.guests[0]));
  // A standalone node has no cluster entry and is quorate.
  assert.equal(aggregateCluster([{ type: 'node', id: 'node/x', name: 'x', online: true }], []).quorate, true);
});

test('LRU cache: TTL expiry, eviction of the least recently used, tag invalidation', () => {
  let now = 0;
  const cache = new LruCache({ maxEntries: 2, now: () => now });
  cache.set('a', 1, 100, ['node:pve1']);
  cache.set('b', 2, 100, ['node:pve2']);
  assert.equal(cache.get('a'), 1); // a is now most recent
  cache.set('c', 3, 100, ['node:pve1', 'guest:100']);
  assert.equal(cache.get('b'), undefined, 'b was least recently used');
  assert.equal(cache.get('a'), 1);
  cache.invalidate('guest:100');
  assert.equal(cache.get('c'), undefined);
  now = 150;
  assert.equal(cache.get('a'), undefined, 'expired');
  cache.set('d', 4, 0, []);
  assert.equal(cache.get('d'), undefined, 'a zero TTL is not stored');
});
