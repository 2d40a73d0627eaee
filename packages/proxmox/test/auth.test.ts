import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxmoxClient, TfaRequiredError, UnauthorizedError } from '@vmplane/proxmox';
import { SimClock } from '@vmplane/proxmox-sim';
import { capturingLogger, passwordClient, sim, tokenClient, violations } from './sim.js';

const TICKET_POSTS = (s: { requests: { count(m: string, t: string): number } }) =>
  s.requests.count('POST', '/access/ticket');

test('ticket login, CSRF on writes: a read and a write both pass', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', type: 'qemu', status: 'stopped' }] });
  const pve = passwordClient(s);
  const nodes = await pve.nodes.list();
  assert.deepEqual(
    nodes.map((n) => n.node),
    ['pve1'],
  );
  const task = await pve.qemu('pve1', 100).start();
  await task.wait();
  assert.equal((await pve.qemu('pve1', 100).status.current()).status, 'running');
  assert.equal(TICKET_POSTS(s), 1);
});

test('an API token needs no login and no CSRF', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }] });
  const pve = tokenClient(s);
  await (await pve.qemu('pve1', 100).start()).wait();
  assert.equal(TICKET_POSTS(s), 0);
  assert.throws(
    () => new ProxmoxClient({ baseUrl: s.url, tokenId: 'no-realm', tokenSecret: 'x' }),
    /user@realm!tokenname/,
  );
});

test('twenty concurrent calls cause one login', async () => {
  const s = await sim({ nodes: 2, guests: 4 });
  const pve = passwordClient(s);
  const answers = await Promise.all(Array.from({ length: 20 }, () => pve.cluster.status({ fresh: true })));
  assert.equal(answers.length, 20);
  assert.equal(TICKET_POSTS(s), 1);
});

test('a wrong password is an UnauthorizedError that does not contain the password', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const logger = capturingLogger();
  const pve = new ProxmoxClient({ baseUrl: s.url, username: 'root@pam', password: 'wrong-secret-123', logger });
  await assert.rejects(pve.nodes.list(), (e: unknown) => {
    assert.ok(e instanceof UnauthorizedError);
    assert.equal(e.status, 401);
    assert.doesNotMatch(`${e.message} ${JSON.stringify(e.body)} ${String(e.stack)}`, /wrong-secret-123/);
    return true;
  });
  assert.doesNotMatch(logger.lines.join('\n'), /wrong-secret-123/);
  pve.close();
});

test('a TFA account gets a clear error, and logs in with otp', async () => {
  const s = await sim({
    nodes: 1,
    guests: 0,
    users: [{ userid: 'alice@pve', password: 'pw-alice', tfa: { totp: '123456' } }],
  });
  const without = new ProxmoxClient({ baseUrl: s.url, username: 'alice', realm: 'pve', password: 'pw-alice' });
  await assert.rejects(without.nodes.list(), (e: unknown) => {
    assert.ok(e instanceof TfaRequiredError);
    assert.match(e.message, /second factor/);
    return true;
  });
  without.close();
  const withOtp = new ProxmoxClient({
    baseUrl: s.url,
    username: 'alice@pve',
    password: 'pw-alice',
    otp: () => '123456',
  });
  assert.ok((await withOtp.nodes.list()).length > 0);
  withOtp.close();
});

test('renewal before the 2 h lifetime posts the ticket as password; past it, falls back to the credentials', async () => {
  const clock = new SimClock();
  const s = await sim({ nodes: 1, guests: 0, clock });
  const pve = passwordClient(s, { now: () => clock.now() });
  await pve.nodes.list({ fresh: true });
  assert.equal(TICKET_POSTS(s), 1);

  clock.advance(70 * 60_000); // 1 h 10 min: past renewAfter (1 h), ticket still valid
  await pve.nodes.list({ fresh: true });
  assert.equal(TICKET_POSTS(s), 2, 'renewed once');
  const renewal = s.requests.entries.filter((e) => e.template === '/access/ticket').at(-1);
  assert.equal(renewal?.status, 200);

  clock.advance(3 * 3600_000); // the renewed ticket expired too: renewal by ticket would fail
  await pve.nodes.list({ fresh: true });
  assert.equal(TICKET_POSTS(s), 3, 'went straight to the password: no doomed renewal');
});

test('a ticket the server stopped accepting gets one re-login and one retry, writes included', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }] });
  const pve = passwordClient(s);
  await pve.nodes.list();
  s.faults.expireTickets();
  await pve.nodes.list({ fresh: true });
  assert.equal(TICKET_POSTS(s), 2);
  s.faults.expireTickets();
  await (await pve.qemu('pve1', 100).start()).wait();
  assert.equal(TICKET_POSTS(s), 3);
  assert.equal(s.requests.count('POST', '/nodes/{node}/qemu/{vmid}/status/start'), 2, 'refused once, then run once');
});

test('secrets never reach the logger', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const logger = capturingLogger();
  const pve = passwordClient(s, { logger });
  const tok = tokenClient(s, { logger });
  await pve.nodes.list();
  await tok.nodes.list();
  s.faults.expireTickets();
  await pve.nodes.list({ fresh: true });
  const text = logger.lines.join('\n');
  assert.ok(logger.lines.length > 0);
  assert.doesNotMatch(text, new RegExp(s.credentials.password));
  assert.doesNotMatch(text, new RegExp(s.credentials.tokenSecret));
  assert.doesNotMatch(text, /PVE:root@pam:[0-9A-F]{8}::/);
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
