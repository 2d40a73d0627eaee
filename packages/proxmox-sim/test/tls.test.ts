import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import { test } from 'node:test';
import WebSocket from 'ws';
import { loggedIn, Raw, sim } from './helpers.js';

function get(url: string, ca: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('tls: HTTPS with a self-signed certificate whose PEM and SHA-256 fingerprint are exposed', async () => {
  // Made in-process: with no openssl binary reachable the simulator still starts.
  const savedPath = process.env.PATH;
  process.env.PATH = '/nonexistent';
  let s: Awaited<ReturnType<typeof sim>>;
  try {
    s = await sim({ nodes: 1, guests: 0, tls: true });
  } finally {
    process.env.PATH = savedPath;
  }
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(s.cert);
  const x509 = new X509Certificate(s.cert);
  assert.equal(s.fingerprint, x509.fingerprint256);
  assert.match(s.fingerprint ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.deepEqual(x509.subjectAltName?.split(', ').sort(), ['DNS:localhost', 'IP Address:127.0.0.1']);
  assert.equal(x509.publicKey.asymmetricKeyType, 'ec');
  assert.equal(x509.issuer, x509.subject);
  assert.ok(x509.verify(x509.publicKey), 'signed by its own key');
  assert.ok(new Date(x509.validTo).getTime() > Date.now() + 365 * 86_400_000, 'valid for years');
  const r = await get(`${s.apiUrl}/version`, s.cert, { Authorization: s.credentials.tokenHeader });
  assert.equal(r.status, 200);
  assert.equal((JSON.parse(r.body) as { data: { release: string } }).data.release, '9.1');
  await assert.rejects(get(`${s.apiUrl}/version`, '', {}), 'an untrusted certificate is refused');
});

test('vncproxy hands out a one-time ticket that opens the vncwebsocket once; termproxy speaks its framing', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'running' }] });
  const api = await loggedIn(s);
  const v = (await api.post('/nodes/pve1/qemu/100/vncproxy', { websocket: 1 })).body.data as {
    port: number;
    ticket: string;
    user: string;
    upid: string;
  };
  assert.match(v.upid, /:vncproxy:100:/);
  const wsUrl = (kind: string, port: number, ticket: string) =>
    `${s.url.replace('http', 'ws')}/api2/json/nodes/pve1${kind}/vncwebsocket?port=${port}&vncticket=${encodeURIComponent(ticket)}`;
  // Messages are queued from the start: the first frame may arrive with the upgrade answer.
  const open = (url: string) =>
    new Promise<{ ws: WebSocket; next: () => Promise<string> }>((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { Cookie: api.headers.Cookie ?? '' } });
      const queue: string[] = [];
      const waiting: Array<(m: string) => void> = [];
      ws.on('message', (d: Buffer) => {
        const w = waiting.shift();
        if (w) w(d.toString());
        else queue.push(d.toString());
      });
      const next = () =>
        new Promise<string>((r) => {
          const m = queue.shift();
          if (m !== undefined) r(m);
          else waiting.push(r);
        });
      ws.once('open', () => resolve({ ws, next }));
      ws.once('error', reject);
    });
  const vnc = await open(wsUrl('/qemu/100', v.port, v.ticket));
  assert.equal(await vnc.next(), 'RFB 003.008\n');
  vnc.ws.close();
  await assert.rejects(open(wsUrl('/qemu/100', v.port, v.ticket)), 'the ticket is one-time');
  const t = (await api.post('/nodes/pve1/termproxy')).body.data as { port: number; ticket: string; user: string };
  const term = await open(wsUrl('', t.port, t.ticket));
  term.ws.send(`${t.user}:${t.ticket}\n`);
  assert.equal(await term.next(), 'OK');
  term.ws.send('0:3:ls\n');
  assert.equal(await term.next(), 'ls\n');
  term.ws.close();
  const anon = new Raw(s);
  assert.equal((await anon.post('/nodes/pve1/termproxy')).status, 401);
});
