import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimClock } from '@vmplane/proxmox-sim';
import { loggedIn, Raw, sim } from './helpers.js';

const guests = [{ vmid: 100, node: 'pve1', status: 'stopped' as const }];

test('a wrong password answers 401 authentication failure', async () => {
  const s = await sim({ nodes: 1, guests });
  const a = await new Raw(s).login('root@pam', 'wrong');
  assert.equal(a.status, 401);
  assert.equal(a.reason, 'authentication failure');
  const unknown = await new Raw(s).login('nobody@pve', 'x');
  assert.equal(unknown.status, 401);
});

test('the ticket answer has ticket, CSRF token, username and cap; the realm may come separately', async () => {
  const s = await sim({ nodes: 1, guests });
  const r = new Raw(s);
  const a = await r.call('POST', '/access/ticket', {
    username: 'root',
    realm: 'pam',
    password: s.credentials.password,
  });
  assert.equal(a.status, 200);
  const d = a.body.data as Record<string, unknown>;
  assert.match(String(d.ticket), /^PVE:root@pam:[0-9A-F]{8}::.+$/);
  assert.match(String(d.CSRFPreventionToken), /^[0-9A-F]{8}:.+$/);
  assert.equal(d.username, 'root@pam');
  assert.equal((d.cap as Record<string, Record<string, number>>).vms?.['VM.PowerMgmt'], 1);
});

test('no ticket, a forged ticket and a missing CSRF token all answer 401', async () => {
  const s = await sim({ nodes: 1, guests });
  const none = await new Raw(s).get('/nodes');
  assert.equal(none.status, 401);
  assert.equal(none.reason, 'No ticket');
  const forged = new Raw(s);
  forged.headers = { Cookie: 'PVEAuthCookie=PVE:root@pam:6A000000::Zm9yZ2Vk' };
  const f = await forged.get('/nodes');
  assert.equal(f.status, 401);
  assert.equal(f.reason, 'invalid PVE ticket');
  const api = await loggedIn(s);
  assert.equal((await api.get('/nodes')).status, 200);
  const noCsrf = new Raw(s);
  noCsrf.headers = { Cookie: api.headers.Cookie ?? '' };
  const w = await noCsrf.post('/nodes/pve1/qemu/100/status/start');
  assert.equal(w.status, 401);
  assert.equal(w.reason, 'Permission denied - invalid csrf token');
  assert.equal((await noCsrf.get('/nodes')).status, 200, 'reads need no CSRF token');
  assert.equal((await api.post('/nodes/pve1/qemu/100/status/start')).status, 200);
});

test('API tokens work without CSRF; a wrong secret is refused', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = new Raw(s).useToken();
  const a = await api.post('/nodes/pve1/qemu/100/status/start');
  assert.equal(a.status, 200);
  assert.match(String(a.body.data), /:qmstart:100:root@pam!vmplane:$/);
  const bad = new Raw(s);
  bad.headers = { Authorization: 'PVEAPIToken=root@pam!vmplane=00000000-0000-0000-0000-000000000000' };
  assert.equal((await bad.get('/version')).status, 401);
});

test('tickets live two hours on the simulated clock and are renewed by posting them as password', async () => {
  const clock = new SimClock();
  const s = await sim({ nodes: 1, guests, clock });
  const api = await loggedIn(s);
  const ticket = decodeURIComponent((api.headers.Cookie ?? '').replace('PVEAuthCookie=', ''));
  clock.advance(90 * 60_000);
  assert.equal((await api.get('/version')).status, 200);
  const renewed = await new Raw(s).login('root@pam', ticket);
  assert.equal(renewed.status, 200);
  clock.advance(31 * 60_000);
  const expired = await api.get('/version');
  assert.equal(expired.status, 401);
  assert.equal(expired.reason, 'invalid PVE ticket');
  assert.equal((await new Raw(s).login('root@pam', ticket)).status, 401, 'an expired ticket cannot be renewed');
});

test('the expireTickets fault invalidates every ticket at once', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  s.faults.expireTickets();
  assert.equal((await api.get('/version')).status, 401);
  await api.login();
  assert.equal((await api.get('/version')).status, 200);
});

test('a TFA user gets NeedTFA and completes the login with the TOTP code', async () => {
  const s = await sim({ nodes: 1, guests, users: [{ userid: 'alice@pve', password: 'pw', tfa: { totp: '123456' } }] });
  const r = new Raw(s);
  const first = await r.login('alice@pve', 'pw');
  assert.equal(first.status, 200);
  const d = first.body.data as Record<string, unknown>;
  assert.equal(d.NeedTFA, 1);
  assert.equal(d.CSRFPreventionToken, undefined);
  const partial = new Raw(s);
  partial.headers = { Cookie: `PVEAuthCookie=${encodeURIComponent(String(d.ticket))}` };
  assert.equal((await partial.get('/version')).status, 401, 'a half-done TFA ticket is not a ticket');
  const second = await r.call('POST', '/access/ticket', {
    username: 'alice@pve',
    'tfa-challenge': String(d.ticket),
    password: 'totp:123456',
  });
  assert.equal(second.status, 200);
  assert.ok((second.body.data as Record<string, unknown>).CSRFPreventionToken);
});

test('an auditor may read but gets 403 Permission check failed on writes', async () => {
  const s = await sim({ nodes: 1, guests, users: [{ userid: 'audit@pve', password: 'pw', role: 'PVEAuditor' }] });
  const r = new Raw(s);
  await r.login('audit@pve', 'pw');
  assert.equal((await r.get('/nodes/pve1/qemu')).status, 200);
  const w = await r.post('/nodes/pve1/qemu/100/status/start');
  assert.equal(w.status, 403);
  assert.match(w.reason, /^Permission check failed \(\/vms\/100, VM.PowerMgmt\)$/);
});
