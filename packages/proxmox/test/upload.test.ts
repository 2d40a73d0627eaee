import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { multipartBody } from '@vmplane/common';
import { InvalidArgumentError, ProxmoxClient, ProxmoxError, ServerError, UnauthorizedError } from '@vmplane/proxmox';
import { passwordClient, sim, tokenClient, violations } from './sim.js';

const UPLOAD = '/nodes/{node}/storage/{storage}/upload';
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmplane-pve-upload-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, size: number): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, Buffer.alloc(size, 0x5a));
  return p;
}

test('an upload goes through the transport: multipart from the shared writer, the task, the volume', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const pve = passwordClient(s);
  const iso = await file('alpine-virt.iso', 100_000);
  const seen: number[] = [];
  const task = await pve
    .node('pve1')
    .storage('local')
    .upload(iso, { content: 'iso', onProgress: (sent, total) => seen.push(sent, total) });
  await task.wait();
  assert.equal(s.state.volumesOf('pve1', 'local').get('local:iso/alpine-virt.iso')?.size, 100_000);
  assert.deepEqual(seen.slice(-2), [100_000, 100_000], 'the last progress report is the whole file');
  const entry = s.requests.entries.find((e) => e.template === UPLOAD);
  assert.equal(entry?.contentType, 'multipart/form-data');
  assert.deepEqual(entry?.params, ['content', 'filename']);
  // With both checksum fields, and a name of its own.
  const named = await pve
    .node('pve1')
    .storage('local')
    .upload(iso, {
      content: 'iso',
      filename: 'renamed.iso',
      checksum: 'ab'.repeat(32),
      checksumAlgorithm: 'sha256',
    });
  await named.wait();
  assert.ok(s.state.volumesOf('pve1', 'local').has('local:iso/renamed.iso'));
  assert.deepEqual(s.requests.entries.filter((e) => e.template === UPLOAD).at(-1)?.params, [
    'checksum',
    'checksum-algorithm',
    'content',
    'filename',
  ]);
  // An empty file is a valid body too.
  await (
    await pve
      .node('pve1')
      .storage('local')
      .upload(await file('empty.iso', 0), { content: 'iso' })
  ).wait();
  assert.equal(s.state.volumesOf('pve1', 'local').get('local:iso/empty.iso')?.size, 0);
});

test('an upload whose ticket PVE no longer accepts logs in again and sends the file again', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const pve = passwordClient(s);
  await pve.nodes.list();
  const logins = s.requests.count('POST', '/access/ticket');
  s.faults.expireTickets();
  const tmpl = await file('debian-12-standard.tar.zst', 50_000);
  const task = await pve.node('pve1').storage('local').upload(tmpl, { content: 'vztmpl' });
  await task.wait();
  assert.equal(s.requests.count('POST', '/access/ticket'), logins + 1, 'one fresh login');
  assert.equal(s.requests.count('POST', UPLOAD), 2, 'refused once with 401, then sent again');
  assert.equal(
    s.state.volumesOf('pve1', 'local').get('local:vztmpl/debian-12-standard.tar.zst')?.size,
    50_000,
    'the second attempt carried the whole file',
  );
});

test('a body that cannot be made again is not repeated after a 401; the next call has a fresh session', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const pve = passwordClient(s);
  await pve.nodes.list();
  s.faults.expireTickets();
  let opened = 0;
  const once = {
    open: () => {
      opened++;
      const body = multipartBody([
        { name: 'content', data: 'iso' },
        { name: 'filename', filename: 'once.iso', data: Buffer.alloc(10, 1) },
      ]);
      return { contentType: body.contentType, length: body.length, data: body.chunks };
    },
  };
  await assert.rejects(pve.transport.send('POST', '/nodes/pve1/storage/local/upload', { body: once }), (e: unknown) => {
    assert.ok(e instanceof UnauthorizedError && e instanceof ProxmoxError);
    return true;
  });
  assert.equal(opened, 1);
  assert.equal(s.requests.count('POST', UPLOAD), 1);
  // The refusal renewed the session: the next one-shot body goes through at once.
  const upid = await pve.transport.send<string>('POST', '/nodes/pve1/storage/local/upload', { body: once });
  await pve.tasks.get(upid).wait();
  assert.equal(opened, 2);
  assert.ok(s.state.volumesOf('pve1', 'local').has('local:iso/once.iso'));
});

test("PVE's error answer to an upload is the typed error with PVE's message", async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const pve = tokenClient(s);
  s.faults.failNext(UPLOAD, { status: 500, message: 'error during cfs-locked storage operation' });
  const iso = await file('refused.iso', 10);
  await assert.rejects(pve.node('pve1').storage('local').upload(iso, { content: 'iso' }), (e: unknown) => {
    assert.ok(e instanceof ServerError && e instanceof ProxmoxError, String(e));
    assert.equal(e.status, 500);
    assert.equal(e.method, 'POST');
    assert.equal(e.path, '/nodes/pve1/storage/local/upload');
    assert.match(e.message, /cfs-locked storage operation/);
    return true;
  });
  assert.equal(s.requests.count('POST', UPLOAD), 1, 'a failed upload is not repeated');
  assert.ok(!s.state.volumesOf('pve1', 'local').has('local:iso/refused.iso'));
});

/** A server in front of nothing, answering uploads as a misconfigured proxy would. */
async function proxyAnswering(status: number, body: string, type: string) {
  const bodies: number[] = [];
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
    });
    req.on('end', () => {
      bodies.push(n);
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const pve = new ProxmoxClient({
    baseUrl: `http://127.0.0.1:${port}`,
    tokenId: 'root@pam!vmplane',
    tokenSecret: '00000000-0000-4000-8000-000000000000',
    retry: { attempts: 3, initial: 1, max: 2 },
  });
  after(() => pve.close());
  return { pve, bodies };
}

test('an answer that is not JSON is a typed ServerError, never a SyntaxError', async () => {
  const iso = await file('proxied.iso', 2048);
  const ok = await proxyAnswering(200, '<html><body>Welcome to nginx</body></html>', 'text/html');
  await assert.rejects(ok.pve.node('pve1').storage('local').upload(iso, { content: 'iso' }), (e: unknown) => {
    assert.ok(e instanceof ServerError && e instanceof ProxmoxError, String(e));
    assert.equal(e.status, 200);
    assert.match(e.message, /not PVE's JSON envelope/);
    return true;
  });
  assert.equal(ok.bodies.length, 1, 'sent once');
  assert.ok((ok.bodies[0] ?? 0) > 2048, 'the whole multipart body arrived');
  const bad = await proxyAnswering(502, '<html>Bad Gateway</html>', 'text/html');
  await assert.rejects(bad.pve.node('pve1').storage('local').upload(iso, { content: 'iso' }), (e: unknown) => {
    assert.ok(e instanceof ServerError && e instanceof ProxmoxError, String(e));
    assert.equal(e.status, 502);
    return true;
  });
  assert.equal(bad.bodies.length, 1, 'an upload is never repeated once it may have reached the server');
  // A read answered with a page is no data either.
  await assert.rejects(ok.pve.nodes.list(), (e: unknown) => e instanceof ServerError && e.status === 200);
});

test('file names PVE would refuse or rewrite, and bad options, are refused with nothing sent', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const pve = tokenClient(s);
  const storage = pve.node('pve1').storage('local');
  const iso = await file('fine.iso', 10);
  const withNewline = await file('evil\r\nContent-Type: text.iso', 10);
  const sent = s.requests.total;
  const refused = async (call: () => Promise<unknown>, argument: string) => {
    const pending = call();
    assert.ok(pending instanceof Promise, 'rejects, never throws synchronously');
    await assert.rejects(pending, (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.equal(e.backend, 'proxmox');
      assert.equal(e.argument, argument);
      return true;
    });
  };
  await refused(() => storage.upload(iso, { content: 'iso', filename: 'a\r\nb.iso' }), 'filename');
  await refused(() => storage.upload(iso, { content: 'iso', filename: 'a\nb.iso' }), 'filename');
  await refused(() => storage.upload(iso, { content: 'iso', filename: 'nul\0.iso' }), 'filename');
  await refused(() => storage.upload(withNewline, { content: 'iso' }), 'filename');
  await refused(() => storage.upload(iso, { content: 'iso', filename: '../../etc/x.iso' }), 'filename');
  await refused(() => storage.upload(iso, { content: 'iso', filename: `${'a'.repeat(252)}.iso` }), 'filename');
  await refused(() => storage.upload(iso, { content: 'iso', filename: '' }), 'filename');
  await refused(() => storage.upload(iso, { content: 'images' as 'iso' }), 'content');
  await refused(() => storage.upload(iso, { content: 'iso', checksum: 'ab' }), 'checksumAlgorithm');
  await refused(() => storage.upload(iso, { content: 'iso', checksumAlgorithm: 'sha256' }), 'checksum');
  await refused(() => storage.upload(join(dir, 'missing.iso'), { content: 'iso' }), 'file');
  await refused(() => storage.upload(dir, { content: 'iso', filename: 'dir.iso' }), 'file');
  await refused(
    () => storage.downloadUrl('https://example.com/x.iso', { content: 'iso', filename: 'x\r\n.iso' }),
    'filename',
  );
  await refused(() => storage.downloadUrl('file:///etc/passwd', { content: 'iso', filename: 'x.iso' }), 'url');
  assert.equal(s.requests.total, sent, 'nothing reached the server');
  // The longest name PVE takes still goes.
  await (await storage.upload(iso, { content: 'iso', filename: `${'a'.repeat(251)}.iso` })).wait();
  assert.equal(s.requests.count('POST', UPLOAD), 1);
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
