import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { loggedIn, type Raw, sim } from './helpers.js';
import { fileServer, hex, qcow2Image } from './provisioning-helpers.js';

const GiB = 1024 ** 3;
const image = qcow2Image(2 * GiB);
const notQcow2 = Buffer.alloc(64 * 1024, 1);
const files = await fileServer({
  '/debian-12.qcow2': image,
  '/broken.qcow2': notQcow2,
  '/tiny.iso': Buffer.alloc(4096),
});

const DL = '/nodes/pve1/storage/local/download-url';

async function download(api: Raw, params: Record<string, string>) {
  const a = await api.post(DL, { content: 'import', ...params });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  const upid = String(a.body.data);
  const done = await api.wait(upid);
  const log = (await api.get(`/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`, { limit: 0 })).body.data as Array<{
    t: string;
  }>;
  return { exitstatus: done.exitstatus, log: log.map((l) => l.t), upid };
}

async function importVolumes(api: Raw) {
  const content = (await api.get('/nodes/pve1/storage/local/content', { content: 'import' })).body.data;
  return content as Array<{ volid: string; size: number; format: string; content: string }>;
}

test('download-url fetches a loopback URL for real: every checksum algorithm, the real size, content import', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  for (const algorithm of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']) {
    const filename = `debian-${algorithm}.qcow2`;
    const r = await download(api, {
      url: files.url('/debian-12.qcow2'),
      filename,
      checksum: hex(algorithm, image).toUpperCase(), // PVE compares case-insensitively
      'checksum-algorithm': algorithm,
    });
    assert.equal(r.exitstatus, 'OK', r.log.join('\n'));
    assert.ok(r.log.includes('calculating checksum...OK, checksum verified'), r.log.join('\n'));
    assert.equal(
      r.log.at(-2),
      `download of '${files.url('/debian-12.qcow2')}' to '/var/lib/vz/import/${filename}' finished`,
    );
    assert.equal(r.upid.split(':')[5], 'download');
    assert.equal(r.upid.split(':')[6], filename);
  }
  const listed = (await importVolumes(api)).find((v) => v.volid === 'local:import/debian-sha256.qcow2');
  assert.deepEqual(listed && { size: listed.size, format: listed.format, content: listed.content }, {
    size: image.length,
    format: 'qcow2',
    content: 'import',
  });
  // Without a checksum, through a redirect: wget follows it.
  const plain = await download(api, { url: files.url('/redirect/debian-12.qcow2'), filename: 'plain.qcow2' });
  assert.equal(plain.exitstatus, 'OK', plain.log.join('\n'));
  assert.equal(s.violations.length, 0);
});

test('download-url fails its task as PVE does: checksum mismatch, HTTP error, refused connection, not an image', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const wrong = 'ab'.repeat(32);
  const mismatch = await download(api, {
    url: files.url('/debian-12.qcow2'),
    filename: 'wrong.qcow2',
    checksum: wrong,
    'checksum-algorithm': 'sha256',
  });
  assert.equal(mismatch.exitstatus, `checksum mismatch: got '${hex('sha256', image)}' != expect '${wrong}'`);
  assert.equal(mismatch.log.at(-1), `TASK ERROR: ${mismatch.exitstatus}`);

  const missing = await download(api, { url: files.url('/nope.qcow2'), filename: 'nope.qcow2' });
  assert.match(missing.exitstatus ?? '', /^download failed: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR 404: Not Found\.$/);

  // A port nothing listens on: bind one, note it, close it.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const refused = await download(api, { url: `http://127.0.0.1:${port}/x.qcow2`, filename: 'x.qcow2' });
  assert.equal(refused.exitstatus, `download failed: Connecting to 127.0.0.1:${port}... failed: Connection refused.`);

  // PVE 9 checks an import with qemu-img before keeping it.
  const broken = await download(api, { url: files.url('/broken.qcow2'), filename: 'broken.qcow2' });
  assert.match(
    broken.exitstatus ?? '',
    /^qemu-img: Could not open '\/var\/lib\/vz\/import\/broken\.qcow2\.tmp\.\d+': Image is not in qcow2 format$/,
  );

  const volids = (await importVolumes(api)).map((v) => v.volid);
  for (const name of ['wrong', 'nope', 'x', 'broken']) assert.ok(!volids.includes(`local:import/${name}.qcow2`), name);
});

test('download-url refuses to replace a file, unless the checksum says it is the same one', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const url = files.url('/debian-12.qcow2');
  assert.equal((await download(api, { url, filename: 'd.qcow2' })).exitstatus, 'OK');
  const again = await download(api, { url, filename: 'd.qcow2' });
  assert.equal(again.exitstatus, "refusing to override existing file '/var/lib/vz/import/d.qcow2'");
  const same = await download(api, {
    url,
    filename: 'd.qcow2',
    checksum: hex('md5', image),
    'checksum-algorithm': 'md5',
  });
  assert.equal(same.exitstatus, 'OK');
  assert.ok(
    same.log.includes('calculating checksum of existing file...OK, got correct file already, no need to download'),
  );
  const other = await download(api, {
    url,
    filename: 'd.qcow2',
    checksum: 'ff'.repeat(16),
    'checksum-algorithm': 'md5',
  });
  assert.equal(
    other.exitstatus,
    `checksum mismatch: got '${hex('md5', image)}' != expect '${'ff'.repeat(16)}', aborting`,
  );
});

test('download-url: schema and storage checks answer at once; iso too; remote hosts are never contacted', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const ftp = await api.post(DL, { content: 'import', url: 'ftp://127.0.0.1/x.qcow2', filename: 'x.qcow2' });
  assert.equal(ftp.status, 400);
  assert.ok(ftp.body.errors?.url);
  const noImport = await api.post('/nodes/pve1/storage/shared/download-url', {
    content: 'vztmpl',
    url: files.url('/x.tar.zst'),
    filename: 'x.tar.zst',
  });
  assert.equal(noImport.status, 500);
  assert.equal(noImport.reason, "storage 'shared' is not configured for content-type 'vztmpl'");
  const iso = await download(api, { content: 'iso', url: files.url('/tiny.iso'), filename: 'tiny.iso' });
  assert.equal(iso.exitstatus, 'OK');
  assert.equal(s.state.volumesOf('pve1', 'local').get('local:iso/tiny.iso')?.size, 4096);
  // By default a remote URL is not fetched: a placeholder stands in (the host is never contacted).
  const remote = await download(api, { url: 'https://cloud.example.invalid/debian.qcow2', filename: 'remote.qcow2' });
  assert.equal(remote.exitstatus, 'OK');
  assert.ok(remote.log.some((l) => l.startsWith("not fetched: 'cloud.example.invalid' is not a loopback address")));
  assert.deepEqual(
    s.violations.map((v) => Object.keys(v.errors)),
    [['url']],
  );

  const strict = await sim({ nodes: 1, guests: 0, remoteDownloads: 'fail' });
  const strictApi = await loggedIn(strict);
  const r = await download(strictApi, { url: 'https://cloud.example.invalid/debian.qcow2', filename: 'remote.qcow2' });
  assert.equal(r.exitstatus, "download failed: wget: unable to resolve host address 'cloud.example.invalid'");
});

test('faults: a download task failing by type, and any task by request rule', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  s.faults.failNextTask('download', 'download failed: 2025-01-01 00:00:00 ERROR 503: Service Unavailable.');
  const failed = await download(api, { url: files.url('/debian-12.qcow2'), filename: 'a.qcow2' });
  assert.equal(failed.exitstatus, 'download failed: 2025-01-01 00:00:00 ERROR 503: Service Unavailable.');
  s.faults.failTask('/nodes/{node}/storage/{storage}/download-url', { message: 'download failed: interrupted' });
  const ruled = await download(api, { url: files.url('/debian-12.qcow2'), filename: 'a.qcow2' });
  assert.equal(ruled.exitstatus, 'download failed: interrupted');
  assert.deepEqual(s.faults.injected.at(-1), { kind: 'failTask', method: 'POST', path: DL });
  assert.ok(!(await importVolumes(api)).some((v) => v.volid === 'local:import/a.qcow2'));
  assert.equal((await download(api, { url: files.url('/debian-12.qcow2'), filename: 'a.qcow2' })).exitstatus, 'OK');
});

test('a VM created with import-from gets the image as its disk (virtual size); resize grows it; POST config too', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  assert.equal(
    (await download(api, { url: files.url('/debian-12.qcow2'), filename: 'debian-12.qcow2' })).exitstatus,
    'OK',
  );
  const create = await api.post('/nodes/pve1/qemu', {
    vmid: 9001,
    name: 'from-image',
    // The size asked for is ignored with import-from, as in qemu-server.
    scsi0: 'local:8,import-from=local:import/debian-12.qcow2',
    net0: 'virtio,bridge=vmbr0',
  });
  assert.equal((await api.wait(String(create.body.data))).exitstatus, 'OK');
  const cfg = (await api.get('/nodes/pve1/qemu/9001/config')).body.data as Record<string, string>;
  assert.equal(cfg.scsi0, 'local:9001/vm-9001-disk-0.qcow2,size=2G');
  const disk = s.state.volumesOf('pve1', 'local').get('local:9001/vm-9001-disk-0.qcow2');
  assert.equal(disk?.size, 2 * GiB);

  const resize = await api.put('/nodes/pve1/qemu/9001/resize', { disk: 'scsi0', size: '+18G' });
  assert.equal((await api.wait(String(resize.body.data))).exitstatus, 'OK');
  const grown = (await api.get('/nodes/pve1/qemu/9001/config')).body.data as Record<string, string>;
  assert.equal(grown.scsi0, 'local:9001/vm-9001-disk-0.qcow2,size=20G');
  assert.equal(disk?.size, 20 * GiB);
  const shrink = await api.put('/nodes/pve1/qemu/9001/resize', { disk: 'scsi0', size: '10G' });
  assert.equal(shrink.status, 500);

  const add = await api.post('/nodes/pve1/qemu/9001/config', {
    scsi1: 'local:0,import-from=local:import/debian-12.qcow2',
  });
  assert.equal((await api.wait(String(add.body.data))).exitstatus, 'OK');
  const both = (await api.get('/nodes/pve1/qemu/9001/config')).body.data as Record<string, string>;
  assert.equal(both.scsi1, 'local:9001/vm-9001-disk-1.qcow2,size=2G');
  const bad = await api.post('/nodes/pve1/qemu/9001/config', { scsi2: 'local:0,import-from=local:import/gone.qcow2' });
  assert.equal(
    (await api.wait(String(bad.body.data))).exitstatus,
    "cannot import from 'local:import/gone.qcow2' - could not get size of local:import/gone.qcow2",
  );
  const sync = await api.put('/nodes/pve1/qemu/9001/config', { scsi2: 'local:0,import-from=local:import/gone.qcow2' });
  assert.equal(sync.status, 500);
  assert.equal(s.violations.length, 0);
});

test('faults: a create task that fails leaves no VM and no disks behind', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  s.faults.failNextTask('qmcreate', 'unable to create VM 9002 - no space left on device');
  const create = await api.post('/nodes/pve1/qemu', {
    vmid: 9002,
    scsi0: 'local:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2',
  });
  assert.equal(
    (await api.wait(String(create.body.data))).exitstatus,
    'unable to create VM 9002 - no space left on device',
  );
  assert.equal((await api.get('/nodes/pve1/qemu/9002/config')).status, 500);
  assert.ok(![...s.state.volumesOf('pve1', 'local').values()].some((v) => v.vmid === 9002));
});

test('a loopback URL that redirects to a remote host is not followed there', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const url = files.url(`/to?url=${encodeURIComponent('http://cloud.example.invalid/x.qcow2')}`);
  const r = await download(api, { url, filename: 'r.qcow2' });
  assert.equal(
    r.exitstatus,
    "download failed: the simulator does not fetch from 'cloud.example.invalid' (it fetches loopback URLs only)",
  );
});
