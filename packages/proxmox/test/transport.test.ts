import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import {
  AbortError,
  ConnectionError,
  NotFoundError,
  ProxmoxClient,
  ProxmoxError,
  ServerError,
  TimeoutError,
  ValidationError,
} from '@vmplane/proxmox';
import { sim, tokenClient, violations } from './sim.js';

const guests = [{ vmid: 100, node: 'pve1', status: 'stopped' as const }];

test('GETs are retried with backoff through injected 503s', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  s.faults.failNext('/cluster/resources', { times: 2, status: 503 });
  const resources = await pve.cluster.resources({ fresh: true });
  assert.ok(resources.length > 0);
  assert.equal(s.requests.count('GET', '/cluster/resources'), 3);
  assert.equal(pve.stats.retries, 2);
});

test('GETs are retried after a dropped connection', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  s.faults.dropNext('/nodes', { times: 1 });
  assert.equal((await pve.nodes.list({ fresh: true })).length, 1);
  assert.equal(pve.stats.retries, 1);
});

test('a GET that keeps failing ends with the ServerError after the configured attempts', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s, { retry: { attempts: 3, initial: 1, max: 2 } });
  s.faults.failNext('/version', { times: 10, status: 503, message: 'busy' });
  await assert.rejects(
    pve.cluster.version(),
    (e: unknown) => e instanceof ServerError && e.status === 503 && /busy/.test(e.message),
  );
  assert.equal(pve.stats.requests, 3);
});

test('a POST is never retried after a 503 or a dropped connection', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  s.faults.failNext('/nodes/{node}/qemu/{vmid}/status/start', { status: 503 });
  await assert.rejects(pve.qemu('pve1', 100).start(), ServerError);
  assert.equal(s.requests.count('POST', '/nodes/{node}/qemu/{vmid}/status/start'), 1);
  s.faults.dropNext('/nodes/{node}/qemu/{vmid}/status/start');
  await assert.rejects(pve.qemu('pve1', 100).start(), (e: unknown) => e instanceof ConnectionError && e.sent === true);
  assert.equal(pve.stats.retries, 0);
});

test('a connection refused before sending is retried, for POSTs too', async () => {
  // A port nobody listens on: the request never leaves, so a retry cannot run anything twice.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  const pve = new ProxmoxClient({
    baseUrl: `http://127.0.0.1:${port}`,
    tokenId: 'root@pam!xx',
    tokenSecret: 'secret',
    retry: { attempts: 3, initial: 1, max: 2 },
  });
  await assert.rejects(pve.qemu('pve1', 100).start(), (e: unknown) => e instanceof ConnectionError && e.sent === false);
  assert.equal(pve.stats.requests, 3);
  pve.close();
});

test('abort and timeout mid-call', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  await pve.nodes.list();
  s.faults.latency = 300;
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 30);
  await assert.rejects(pve.nodes.list({ fresh: true, signal: controller.signal }), AbortError);
  await assert.rejects(
    pve.nodes.list({ fresh: true, timeout: 30 }),
    (e: unknown) => e instanceof TimeoutError && e.timeout === 30,
  );
  s.faults.latency = 0;
});

test('a 400 is a ValidationError with the per-parameter errors map', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  // Config values are PVE's to check (the client checks identifiers, not every config key).
  await assert.rejects(pve.qemu('pve1', 100).updateConfig({ cores: 0 }), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    assert.ok(e instanceof ProxmoxError);
    assert.equal(e.status, 400);
    assert.ok(e.errors.cores, JSON.stringify(e.errors));
    assert.match(e.message, /cores/);
    return true;
  });
  // That request was refused on purpose: take it out of the suite-wide violation check.
  s.violations.length = 0;
});

test('API errors carry the status, the path and PVE message', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  s.faults.failNext('/nodes/{node}/status', { status: 404, message: 'no such node' });
  await assert.rejects(pve.node('pve1').status({ fresh: true }), (e: unknown) => {
    assert.ok(e instanceof NotFoundError && e instanceof ProxmoxError);
    assert.equal(e.method, 'GET');
    assert.equal(e.path, '/nodes/pve1/status');
    assert.match(e.message, /no such node/);
    return true;
  });
});

test('cached and fresh reads, invalidation per guest', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  await pve.cluster.resources();
  await pve.cluster.resources();
  assert.equal(s.requests.count('GET', '/cluster/resources'), 1, 'second read from the cache');
  await pve.cluster.resources({ fresh: true });
  assert.equal(s.requests.count('GET', '/cluster/resources'), 2);
  const vm = pve.qemu('pve1', 100);
  await vm.config();
  await vm.config();
  assert.equal(s.requests.count('GET', '/nodes/{node}/qemu/{vmid}/config'), 1);
  await (await vm.updateConfig({ description: 'changed' })).wait();
  assert.equal((await vm.config()).description, 'changed', 'a change drops the cached config');
  await pve.cluster.resources();
  assert.equal(s.requests.count('GET', '/cluster/resources'), 3, 'the change also dropped the cluster-wide views');
  await pve.cluster.resources();
  assert.equal(s.requests.count('GET', '/cluster/resources'), 3);
  pve.invalidateNode('pve1');
  await pve.cluster.resources();
  assert.equal(s.requests.count('GET', '/cluster/resources'), 4);
  pve.clearCache();
  await vm.config();
  assert.equal(s.requests.count('GET', '/nodes/{node}/qemu/{vmid}/config'), 3);
});

test('cached answers are copies: changing one does not change the cache', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  const a = await pve.nodes.list();
  (a[0] as { node: string }).node = 'mutated';
  const b = await pve.nodes.list();
  assert.equal(b[0]?.node, 'pve1');
});

test('HTTPS: fingerprint pinning, CA, explicit insecure, and refusal by default', async () => {
  const s = await sim({ nodes: 1, guests, tls: true });
  assert.ok(s.fingerprint && s.cert);
  const base = { baseUrl: s.url, tokenId: s.credentials.tokenId, tokenSecret: s.credentials.tokenSecret };
  const pinned = new ProxmoxClient({ ...base, fingerprint: s.fingerprint });
  assert.equal((await pinned.nodes.list()).length, 1);
  const withCa = new ProxmoxClient({ ...base, ca: s.cert });
  assert.equal((await withCa.nodes.list()).length, 1);
  const insecure = new ProxmoxClient({ ...base, insecure: true });
  assert.equal((await insecure.nodes.list()).length, 1);
  const before = s.requests.total;
  const wrongPin = new ProxmoxClient({ ...base, fingerprint: 'AA:'.repeat(31) + 'AA', retry: { attempts: 1 } });
  await assert.rejects(
    wrongPin.nodes.list(),
    (e: unknown) => e instanceof ConnectionError && /fingerprint/.test(e.message),
  );
  const untrusted = new ProxmoxClient({ ...base, retry: { attempts: 1 } });
  await assert.rejects(untrusted.nodes.list(), ConnectionError);
  assert.equal(s.requests.total, before, 'nothing reached the server over an unverified connection');
  for (const c of [pinned, withCa, insecure, wrongPin, untrusted]) c.close();
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
