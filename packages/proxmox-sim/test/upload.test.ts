import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import type { Simulator } from '@vmplane/proxmox-sim';
import { loggedIn, type Raw, sim } from './helpers.js';

const UPLOAD = '/nodes/{node}/storage/{storage}/upload';
const BOUNDARY = 'vmplane-test-boundary';

/** A multipart body built byte by byte, so the file name's bytes are exactly the test's. */
function multipart(content: string, filename: string, data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="content"\r\n\r\n${content}\r\n`),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="filename"; filename="`),
    Buffer.from(filename, 'utf8'),
    Buffer.from('"\r\nContent-Type: application/octet-stream\r\n\r\n'),
    data,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

interface UploadAnswer {
  status: number;
  reason: string;
  body: { data: unknown; errors?: Record<string, string>; message?: string };
}

async function upload(
  s: Simulator,
  headers: Record<string, string>,
  content: string,
  filename: string,
  storage = 'local',
  data = Buffer.from('payload'),
): Promise<UploadAnswer> {
  const res = await fetch(`${s.apiUrl}/nodes/pve1/storage/${storage}/upload`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: multipart(content, filename, data),
  });
  return {
    status: res.status,
    reason: res.statusText,
    body: (await res.json()) as UploadAnswer['body'],
  };
}

async function uploaded(api: Raw, content: string, filename: string, storage = 'local'): Promise<string> {
  const a = await upload(api.s, api.headers, content, filename, storage);
  assert.equal(a.status, 200, `${content} ${filename}: ${JSON.stringify(a.body)}`);
  const done = await api.wait(String(a.body.data));
  assert.equal(done.exitstatus, 'OK');
  return String(a.body.data);
}

function volids(s: Simulator, storage = 'local'): string[] {
  return [...s.state.volumesOf('pve1', storage).keys()].sort();
}

test('upload: each content type takes only its extensions; a wrong one is 400 on filename, nothing stored', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const before = volids(s);
  const tasks = s.state.tasks.size;
  const refusals: Array<[string, string, string]> = [
    ['iso', 'x.bin', 'wrong file extension'],
    ['iso', 'x.iso.gz', 'wrong file extension'],
    ['iso', '.iso', 'wrong file extension'],
    ['vztmpl', 'y.iso', 'wrong file extension'],
    ['vztmpl', 'y.tgz', 'wrong file extension'],
    ['vztmpl', 'y.tar.lz4', 'wrong file extension'],
    ['import', 'disk.ovf', 'invalid filename or wrong extension'],
    ['import', 'disk.QCOW2', 'invalid filename or wrong extension'],
    ['import', 'disk.img', 'invalid filename or wrong extension'],
  ];
  for (const [content, filename, message] of refusals) {
    const a = await upload(s, api.headers, content, filename);
    assert.equal(a.status, 400, `${content} ${filename}`);
    assert.equal(a.reason, 'Parameter verification failed.');
    assert.deepEqual(a.body.errors, { filename: message }, `${content} ${filename}`);
  }
  assert.deepEqual(volids(s), before, 'nothing was stored');
  assert.equal(s.state.tasks.size, tasks, 'no task was started');

  // What the schema refuses never reaches the extension check: content is iso, vztmpl or import.
  const images = await upload(s, api.headers, 'images', 'disk.raw');
  assert.equal(images.status, 400);
  assert.match(images.body.errors?.content ?? '', /enumeration/);
  assert.equal(images.body.errors?.filename, undefined);

  // Accepted: ISO names in any case, the template archives (and a plain .tar, new in 9.1), and the
  // disk images import takes; the listing shows PVE's format for each.
  const accepted: Array<[string, string, string]> = [
    ['iso', 'a.iso', 'iso'],
    ['iso', 'B.ISO', 'iso'],
    ['iso', 'c.img', 'iso'],
    ['vztmpl', 'd.tar.gz', 'tgz'],
    ['vztmpl', 'e.tar.xz', 'txz'],
    ['vztmpl', 'f.tar.zst', 'tzst'],
    ['vztmpl', 'g.tar.bz2', 'tbz2'],
    ['vztmpl', 'h.TAR.GZ', 'tGZ'],
    ['vztmpl', 'i.tar', 'tar'],
    ['import', 'j.qcow2', 'qcow2'],
    ['import', 'k.raw', 'raw'],
    ['import', 'l.vmdk', 'vmdk'],
    ['import', 'm.ova', 'ova'],
  ];
  for (const [content, filename, format] of accepted) {
    await uploaded(api, content, filename);
    const listed = (await api.get('/nodes/pve1/storage/local/content', { content })).body.data as Array<{
      volid: string;
      format: string;
    }>;
    assert.equal(listed.find((v) => v.volid === `local:${content}/${filename}`)?.format, format, filename);
  }
  assert.deepEqual(
    s.violations.map((v) => v.errors),
    [{ content: "value '***' does not have a value in the enumeration 'iso, vztmpl, import'" }],
  );
});

test('upload: the extension is checked before the storage content, and a storage without the content is 500', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  // `shared` holds iso and import, not vztmpl.
  const wrongName = await upload(s, api.headers, 'vztmpl', 'y.iso', 'shared');
  assert.equal(wrongName.status, 400);
  assert.deepEqual(wrongName.body.errors, { filename: 'wrong file extension' });
  const noContent = await upload(s, api.headers, 'vztmpl', 'y.tar.zst', 'shared');
  assert.equal(noContent.status, 500);
  assert.equal(noContent.reason, "storage 'shared' does not support 'vztmpl' content");
  const missing = await upload(s, api.headers, 'iso', 'y.iso', 'nosuch');
  assert.equal(missing.status, 500);
  assert.equal(missing.reason, "storage 'nosuch' does not exist");
  assert.ok(!volids(s, 'shared').some((v) => v.includes('y.')));
});

test('upload: the file name is normalised as PVE does, byte by byte, and the volume takes that name', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const cases: Array<[string, string, string]> = [
    ['iso', 'we ird$.iso', 'local:iso/we_ird_.iso'],
    ['iso', ' padded.iso ', 'local:iso/padded.iso'],
    ['iso', 'C:\\Users\\me\\win.iso', 'local:iso/win.iso'],
    ['iso', 'dir/sub/deep.iso', 'local:iso/deep.iso'],
    // Two UTF-8 bytes, two underscores: pveproxy passes the header's bytes undecoded.
    ['iso', 'café.iso', 'local:iso/caf__.iso'],
    ['vztmpl', 'debian+12 (std).tar.zst', 'local:vztmpl/debian_12__std_.tar.zst'],
    ['import', 'a=b+c.qcow2', 'local:import/a_b_c.qcow2'],
  ];
  for (const [content, filename, volid] of cases) {
    await uploaded(api, content, filename);
    assert.ok(s.state.volumesOf('pve1', 'local').has(volid), `${filename} -> ${volid}: ${volids(s).join(' ')}`);
  }
  // The name is checked after normalising: `x.i$o` becomes `x.i_o`, which is no ISO.
  const odd = await upload(s, api.headers, 'iso', 'x.i$o');
  assert.equal(odd.status, 400);
  assert.ok(!volids(s).some((v) => v.includes('x.i')));
  // The task says where the file went, under PVE's template directory, and names no worker ID.
  const upid = await uploaded(api, 'iso', 'logged one.iso');
  assert.equal(upid.split(':')[5], 'imgcopy');
  assert.equal(upid.split(':')[6], '');
  const log = (await api.get(`/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`)).body.data as Array<{ t: string }>;
  assert.ok(
    log.some((l) => l.t === 'target file: /var/lib/vz/template/iso/logged_one.iso'),
    JSON.stringify(log),
  );
});

test('download-url: the same names and extensions, normalised per character', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const bad = await api.post('/nodes/pve1/storage/local/download-url', {
    url: 'https://example.com/x',
    content: 'vztmpl',
    filename: 'x.iso',
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.body.errors, { filename: 'wrong file extension' });
  const ok = await api.post('/nodes/pve1/storage/local/download-url', {
    url: 'https://example.com/x',
    content: 'iso',
    filename: 'café x.iso',
  });
  assert.equal(ok.status, 200);
  assert.equal((await api.wait(String(ok.body.data))).exitstatus, 'OK');
  assert.ok(s.state.volumesOf('pve1', 'local').has('local:iso/caf__x.iso'), volids(s).join(' '));
});

/**
 * Sends an upload of `total` bytes over a raw socket, a chunk at a time, and stops as soon as an
 * answer arrives. Returns the status line and how many body bytes had been written by then.
 */
async function rawUpload(s: Simulator, headers: Record<string, string>, total: number) {
  const socket = net.connect(s.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let answer = '';
  let answered = false;
  socket.on('data', (c: Buffer) => {
    answer += c.toString('latin1');
    if (answer.includes('\r\n\r\n')) answered = true;
  });
  socket.on('error', () => {}); // a write after the answer may meet a closed connection
  const head = [
    'POST /api2/json/nodes/pve1/storage/local/upload HTTP/1.1',
    'Host: 127.0.0.1',
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}`,
    `Content-Length: ${total}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    '',
    '',
  ].join('\r\n');
  socket.write(head);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let sent = 0;
  // At most total/64 KiB writes, each given a moment for an answer to come back.
  while (sent < total && !answered && !socket.destroyed) {
    const n = Math.min(chunk.length, total - sent);
    if (!socket.write(chunk.subarray(0, n))) await new Promise((r) => socket.once('drain', r));
    sent += n;
    await new Promise((r) => setTimeout(r, 5));
  }
  // Wait (bounded) for the answer when the whole body went out first.
  for (let i = 0; i < 400 && !answered && !socket.destroyed; i++) await new Promise((r) => setTimeout(r, 5));
  socket.destroy();
  return { statusLine: answer.split('\r\n')[0] ?? '', sent, total };
}

test('upload: refused from the headers before the body is read (401 without auth, 403 for an auditor)', async () => {
  const s = await sim({
    nodes: 1,
    guests: 0,
    users: [{ userid: 'audit@pve', password: 'pw', role: 'PVEAuditor' }],
  });
  const total = 8 * 1024 * 1024;
  const none = await rawUpload(s, {}, total);
  assert.equal(none.statusLine, 'HTTP/1.1 401 No ticket');
  assert.ok(none.sent < total, `answered after ${none.sent} of ${total} bytes`);

  const auditor = await loggedIn(s);
  await auditor.login('audit@pve', 'pw');
  const refused = await rawUpload(s, auditor.headers, total);
  assert.equal(refused.statusLine, 'HTTP/1.1 403 Permission check failed (/storage/local, Datastore.AllocateTemplate)');
  assert.ok(refused.sent < total, `answered after ${refused.sent} of ${total} bytes`);

  const bad = await rawUpload(
    s,
    { Authorization: 'PVEAPIToken=root@pam!vmplane=00000000-0000-0000-0000-000000000000' },
    total,
  );
  assert.match(bad.statusLine, /^HTTP\/1\.1 401 /);
  assert.ok(bad.sent < total, `answered after ${bad.sent} of ${total} bytes`);

  // The requests were recorded, but no parameter was ever parsed from their bodies.
  const entries = s.requests.entries.filter((e) => e.template === UPLOAD);
  assert.deepEqual(
    entries.map((e) => [e.status, e.params]),
    [
      [401, undefined],
      [403, undefined],
      [401, undefined],
    ],
  );
  // The simulator still serves after the abandoned bodies.
  assert.equal((await auditor.get('/version')).status, 200);
});

test('upload: a ticket needs no CSRF token for an upload (PVE skips the check there), unlike other writes', async () => {
  const s = await sim({ nodes: 1, guests: 1 });
  const api = await loggedIn(s);
  const cookieOnly = { Cookie: api.headers.Cookie ?? '' };
  const a = await upload(s, cookieOnly, 'iso', 'nocsrf.iso');
  assert.equal(a.status, 200, JSON.stringify(a.body));
  await api.wait(String(a.body.data));
  assert.ok(s.state.volumesOf('pve1', 'local').has('local:iso/nocsrf.iso'));
  const write = await fetch(`${s.apiUrl}/nodes/pve1/qemu/100/status/start`, { method: 'POST', headers: cookieOnly });
  assert.equal(write.status, 401);
  assert.equal(write.statusText, 'Permission denied - invalid csrf token');
  // An API token needs none either, as everywhere.
  const token = await upload(s, { Authorization: s.credentials.tokenHeader }, 'iso', 'token.iso');
  assert.equal(token.status, 200);
});
