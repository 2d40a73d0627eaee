import assert from 'node:assert/strict';
import * as http from 'node:http';
import { after, test } from 'node:test';
import {
  ConnectionError,
  FingerprintMismatchError,
  ProxmoxClient,
  ServerError,
  TlsVerificationError,
} from '@vmplane/proxmox';
import { capturingLogger, sim } from './sim.js';

/**
 * A peer answering `/api2/json/version` with 503s carrying `retryAfter` (what a proxy in front of
 * PVE sends under load; PVE itself sends no Retry-After), then with PVE's envelope.
 */
async function busyServer(failures: number, retryAfter: string) {
  let seen = 0;
  const server = http.createServer((_req, res) => {
    seen++;
    if (seen <= failures) {
      res.writeHead(503, 'Service Unavailable', { 'Retry-After': retryAfter, 'Content-Length': 0 });
      res.end();
      return;
    }
    const body = JSON.stringify({ data: { version: '9.1.3', release: '9.1', repoid: 'abc' } });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => server.close(() => r())));
  const logger = capturingLogger();
  const client = (extra: { maxRetryAfter?: number } = {}) => {
    const pve = new ProxmoxClient({
      baseUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
      tokenId: 'root@pam!vmplane',
      tokenSecret: '00000000-0000-4000-8000-000000000000',
      retry: { attempts: 4, initial: 1, max: 2, ...extra },
      logger,
    });
    after(() => pve.close());
    return pve;
  };
  return { client, seen: () => seen, logger };
}

const delays = (lines: string[]) =>
  lines
    .filter((l) => l.startsWith('warn '))
    .map((l) => (JSON.parse(l.slice(l.indexOf('{'))) as { delayMs: number }).delayMs);

test('Retry-After in seconds: waited for when short enough, a longer one fails at once', async () => {
  const short = await busyServer(1, '1');
  const pve = short.client({ maxRetryAfter: 5_000 });
  assert.equal((await pve.cluster.version()).version, '9.1.3');
  assert.equal(short.seen(), 2);
  assert.deepEqual(delays(short.logger.lines), [1_000], 'the pause was the server’s, not the backoff');

  const long = await busyServer(1, '120');
  await assert.rejects(long.client().cluster.version(), (e: unknown) => {
    assert.ok(e instanceof ServerError);
    assert.equal(e.status, 503);
    assert.equal(e.retryAfter, 120);
    return true;
  });
  assert.equal(long.seen(), 1, 'two minutes is beyond the default 60 s: no retry');
});

test('Retry-After as an HTTP-date: a past date retries at once, a future one is read as seconds', async () => {
  const past = await busyServer(2, new Date(Date.now() - 60_000).toUTCString());
  const pve = past.client();
  assert.equal((await pve.cluster.version()).version, '9.1.3');
  assert.equal(past.seen(), 3);
  assert.deepEqual(delays(past.logger.lines), [0, 0]);

  const future = await busyServer(5, new Date(Date.now() + 10 * 60_000).toUTCString());
  await assert.rejects(future.client().cluster.version(), (e: unknown) => {
    assert.ok(e instanceof ServerError);
    // About ten minutes; the margin is only the seconds this test takes.
    assert.ok(e.retryAfter !== undefined && e.retryAfter > 500 && e.retryAfter <= 600, String(e.retryAfter));
    return true;
  });
  assert.equal(future.seen(), 1, 'ten minutes away: failed at once instead of 4 attempts with backoff');
});

test('a pin mismatch is final: a FingerprintMismatchError (ConnectionError, sent false), one attempt', async () => {
  const s = await sim({ nodes: 1, guests: 0, tls: true });
  const base = { baseUrl: s.url, tokenId: s.credentials.tokenId, tokenSecret: s.credentials.tokenSecret };
  const wrong = new ProxmoxClient({
    ...base,
    fingerprint: 'AA:'.repeat(31) + 'AA',
    retry: { attempts: 4, initial: 1 },
  });
  after(() => wrong.close());
  const before = s.requests.total;
  for (const call of [() => wrong.nodes.list(), () => wrong.qemu('pve1', 100).start()]) {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof FingerprintMismatchError, String(e));
      assert.ok(e instanceof TlsVerificationError && e instanceof ConnectionError);
      assert.equal(e.sent, false);
      assert.equal(e.backend, 'proxmox');
      assert.equal(e.expected, 'aa'.repeat(32));
      assert.equal(e.actual, s.fingerprint?.replace(/:/g, '').toLowerCase());
      return true;
    });
  }
  assert.equal(wrong.stats.requests, 2, 'one attempt per call');
  assert.equal(wrong.stats.retries, 0);
  assert.equal(s.requests.total, before, 'nothing reached the server');

  // A certificate nobody vouches for is as final.
  const untrusted = new ProxmoxClient({ ...base, retry: { attempts: 4, initial: 1 } });
  after(() => untrusted.close());
  await assert.rejects(untrusted.nodes.list(), (e: unknown) => e instanceof TlsVerificationError && !e.sent);
  assert.equal(untrusted.stats.retries, 0);

  // The console websocket goes through the same pinned connections.
  const right = new ProxmoxClient({ ...base, fingerprint: s.fingerprint });
  after(() => right.close());
  const proxy = await right.node('pve1').vncShell();
  await assert.rejects(wrong.node('pve1').shellWebSocket(proxy), FingerprintMismatchError);
});
