import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedIn, sim } from './helpers.js';

type Obj = Record<string, unknown>;

test('tasks have real UPIDs, run, then stop with OK and a log; status changes when they end', async () => {
  const s = await sim({ nodes: 2, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }], taskDuration: 50 });
  const api = await loggedIn(s);
  const upid = String((await api.post('/nodes/pve1/qemu/100/status/start')).body.data);
  assert.match(upid, /^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmstart:100:root@pam:$/);
  const st = await api.get(`/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`);
  assert.equal((st.body.data as Obj).status, 'running');
  const done = await api.wait(upid);
  assert.equal(done.exitstatus, 'OK');
  const log = await api.get(`/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`, { start: 0, limit: 10 });
  assert.deepEqual((log.body.data as Obj[]).at(-1), { n: 1, t: 'TASK OK' });
  const cur = await api.get('/nodes/pve1/qemu/100/status/current');
  assert.equal((cur.body.data as Obj).status, 'running');
  const again = await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/start')).body.data));
  assert.equal(again.exitstatus, 'VM 100 already running');
  const list = await api.get('/nodes/pve1/tasks', { vmid: 100 });
  assert.equal(list.body.total, 2);
  const cluster = await api.get('/cluster/tasks');
  assert.equal((cluster.body.data as Obj[]).length, 2);
});

test('migrate moves the guest to the target node, with pre-checks', async () => {
  const s = await sim({ nodes: 3, guests: [{ vmid: 100, node: 'pve1', status: 'running' }] });
  const api = await loggedIn(s);
  const same = await api.post('/nodes/pve1/qemu/100/migrate', { target: 'pve1', online: 1 });
  assert.equal(same.status, 500);
  assert.equal(same.reason, 'target is local node.');
  const offline = await api.post('/nodes/pve1/qemu/100/migrate', { target: 'pve3', online: 1 });
  assert.equal(offline.status, 500);
  s.faults.nodeOffline('pve3');
  const off = await api.post('/nodes/pve1/qemu/100/migrate', { target: 'pve3', online: 1, 'with-local-disks': 1 });
  assert.match(off.reason, /not online/);
  const noOnline = await api.post('/nodes/pve1/qemu/100/migrate', { target: 'pve2' });
  assert.match(noOnline.reason, /without --online/);
  const upid = String(
    (await api.post('/nodes/pve1/qemu/100/migrate', { target: 'pve2', online: 1, 'with-local-disks': 1 })).body.data,
  );
  assert.match(upid, /:qmigrate:100:/);
  assert.equal((await api.wait(upid)).exitstatus, 'OK');
  assert.equal((await api.get('/nodes/pve2/qemu/100/status/current')).status, 200);
  assert.equal((await api.get('/nodes/pve1/qemu/100/status/current')).status, 500);
  const res = await api.get('/cluster/resources', { type: 'vm' });
  assert.equal((res.body.data as Obj[]).find((r) => r.vmid === 100)?.node, 'pve2');
  const content = await api.get('/nodes/pve2/storage/local/content', { vmid: 100 });
  assert.equal((content.body.data as Obj[]).length, 1, 'the local disk moved along');
});

test('snapshots: create with vmstate and description, list, rollback, delete', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'running' }] });
  const api = await loggedIn(s);
  await api.wait(
    String(
      (await api.post('/nodes/pve1/qemu/100/snapshot', { snapname: 'before', vmstate: 1, description: 'first' })).body
        .data,
    ),
  );
  await api.put('/nodes/pve1/qemu/100/config', { cores: 8 });
  const list = (await api.get('/nodes/pve1/qemu/100/snapshot')).body.data as Obj[];
  assert.deepEqual(
    list.map((x) => [x.name, x.description]),
    [
      ['before', 'first'],
      ['current', 'You are here!'],
    ],
  );
  assert.equal(list[0]?.vmstate, 1);
  const dup = await api.post('/nodes/pve1/qemu/100/snapshot', { snapname: 'before' });
  assert.equal(dup.status, 500);
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/snapshot/before/rollback')).body.data));
  assert.equal(((await api.get('/nodes/pve1/qemu/100/config')).body.data as Obj).cores, 2);
  await api.wait(String((await api.del('/nodes/pve1/qemu/100/snapshot/before')).body.data));
  assert.equal(((await api.get('/nodes/pve1/qemu/100/snapshot')).body.data as Obj[]).length, 1);
});

test('clone (full and linked from a template), template conversion, resize, delete with purge', async () => {
  const s = await sim({ nodes: 2, guests: [{ vmid: 100, node: 'pve1', status: 'stopped', pool: 'lab' }] });
  const api = await loggedIn(s);
  await api.wait(
    String(
      (
        await api.post('/nodes/pve1/qemu/100/clone', {
          newid: 200,
          name: 'copy',
          full: 1,
          storage: 'shared',
          target: 'pve2',
        })
      ).body.data,
    ),
  );
  const copy = (await api.get('/nodes/pve2/qemu/200/config')).body.data as Obj;
  assert.equal(copy.name, 'copy');
  assert.match(String(copy.scsi0), /^shared:200\/vm-200-disk-0\.raw/);
  const linkedFromVm = await api.post('/nodes/pve1/qemu/100/clone', { newid: 201, full: 0 });
  assert.equal(linkedFromVm.status, 500);
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/template')).body.data));
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/clone', { newid: 202, name: 'linked' })).body.data));
  assert.match(String(((await api.get('/nodes/pve1/qemu/202/config')).body.data as Obj).scsi0), /base-100-disk-0/);
  assert.equal(
    (await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/start')).body.data))).exitstatus?.includes(
      'template',
    ),
    true,
  );
  await api.wait(String((await api.put('/nodes/pve2/qemu/200/resize', { disk: 'scsi0', size: '+8G' })).body.data));
  assert.match(String(((await api.get('/nodes/pve2/qemu/200/config')).body.data as Obj).scsi0), /size=40G/);
  const shrink = await api.put('/nodes/pve2/qemu/200/resize', { disk: 'scsi0', size: '10G' });
  assert.equal(shrink.reason, 'shrinking disks is not supported');
  await api.wait(
    String((await api.del('/nodes/pve2/qemu/200', { purge: 1, 'destroy-unreferenced-disks': 1 })).body.data),
  );
  assert.equal((await api.get('/nodes/pve2/qemu/200/config')).status, 500);
  const pool = (await api.get('/pools/lab')).body.data as { members: Obj[] };
  assert.deepEqual(
    pool.members.map((m) => m.vmid),
    [100],
  );
});

test('power: suspend to disk and start again, pause and resume, shutdown, stop', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'running' }] });
  const api = await loggedIn(s);
  const cur = async () => (await api.get('/nodes/pve1/qemu/100/status/current')).body.data as Obj;
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/suspend')).body.data));
  assert.equal((await cur()).qmpstatus, 'paused');
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/resume')).body.data));
  assert.equal((await cur()).qmpstatus, 'running');
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/suspend', { todisk: 1 })).body.data));
  assert.equal((await cur()).status, 'stopped');
  assert.equal((await cur()).lock, 'suspended');
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/start')).body.data));
  assert.equal((await cur()).status, 'running');
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/shutdown')).body.data));
  assert.equal((await cur()).status, 'stopped');
  const t = await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/shutdown')).body.data));
  assert.equal(t.exitstatus, 'VM 100 not running');
});

test('guest agent: ping, interfaces, fsinfo, exec with echo semantics and exec-status, file write/read', async () => {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 100, node: 'pve1', status: 'running' },
      { vmid: 101, node: 'pve1', status: 'stopped' },
    ],
  });
  const api = await loggedIn(s);
  const base = '/nodes/pve1/qemu/100/agent';
  assert.deepEqual((await api.post(`${base}/ping`)).body.data, { result: {} });
  const ifs = (await api.get(`${base}/network-get-interfaces`)).body.data as { result: Obj[] };
  assert.equal(ifs.result[1]?.name, 'eth0');
  const fs = (await api.get(`${base}/get-fsinfo`)).body.data as { result: Obj[] };
  assert.equal(fs.result[0]?.mountpoint, '/');
  const pid = ((await api.post(`${base}/exec`, { command: 'echo' })).body.data as { pid: number }).pid;
  assert.equal(typeof pid, 'number');
  const exec = await api.call(
    'POST',
    `${base}/exec`,
    { command: ['echo', 'hello', 'world'] } as unknown as Record<string, string>,
    true,
  );
  const st = (await api.get(`${base}/exec-status`, { pid: (exec.body.data as { pid: number }).pid })).body.data as Obj;
  assert.deepEqual(st, { exited: 1, exitcode: 0, 'out-data': 'hello world\n' });
  const sh = await api.call(
    'POST',
    `${base}/exec`,
    { command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] } as unknown as Record<string, string>,
    true,
  );
  const st2 = (await api.get(`${base}/exec-status`, { pid: (sh.body.data as { pid: number }).pid })).body.data as Obj;
  assert.deepEqual(st2, { exited: 1, exitcode: 3, 'out-data': 'out\n', 'err-data': 'err\n' });
  await api.post(`${base}/file-write`, { file: '/tmp/x', content: 'data' });
  assert.deepEqual((await api.get(`${base}/file-read`, { file: '/tmp/x' })).body.data, { content: 'data' });
  const stopped = await api.post('/nodes/pve1/qemu/101/agent/ping');
  assert.equal(stopped.status, 500);
});

test('create from a cloud image with import-from and cloud-init settings; nextid; storage content', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = await loggedIn(s);
  const id = (await api.get('/cluster/nextid')).body.data;
  assert.equal(id, '100');
  const upid = await api.post('/nodes/pve1/qemu', {
    vmid: 100,
    name: 'cloud',
    memory: '2048',
    scsi0: 'local:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2',
    ide2: 'local:cloudinit',
    ciuser: 'debian',
    sshkeys: encodeURIComponent('ssh-ed25519 AAAAC3 me@host').replace(/%20/g, '%20'),
    ipconfig0: 'ip=10.0.0.10/24,gw=10.0.0.1',
    nameserver: '1.1.1.1',
    net0: 'virtio,bridge=vmbr0',
  });
  assert.equal(upid.status, 200, JSON.stringify(upid.body));
  await api.wait(String(upid.body.data));
  const cfg = (await api.get('/nodes/pve1/qemu/100/config')).body.data as Obj;
  // The import keeps the image's format where the storage can hold it, and its (virtual) size.
  assert.match(String(cfg.scsi0), /^local:100\/vm-100-disk-0\.qcow2,size=2G$/);
  assert.match(String(cfg.net0), /^virtio=BC:24:11:00:64:00,bridge=vmbr0$/);
  assert.equal(cfg.ciuser, 'debian');
  const missing = await api.post('/nodes/pve1/qemu', {
    vmid: 101,
    scsi0: 'local:0,import-from=local:import/nope.qcow2',
  });
  // qemu-server finds that out in its worker: the call answers a UPID, the task fails, no VM is left.
  assert.equal(missing.status, 200);
  assert.equal(
    (await api.wait(String(missing.body.data))).exitstatus,
    "unable to create VM 101 - cannot import from 'local:import/nope.qcow2' - could not get size of local:import/nope.qcow2",
  );
  assert.equal((await api.get('/nodes/pve1/qemu/101/config')).status, 500);
  const dump = (await api.get('/nodes/pve1/qemu/100/cloudinit/dump', { type: 'user' })).body.data;
  assert.match(String(dump), /ssh-ed25519 AAAAC3 me@host/);
  const content = (await api.get('/nodes/pve1/storage/local/content', { content: 'import' })).body.data as Obj[];
  assert.ok(content.some((v) => v.volid === 'local:import/debian-12-genericcloud-amd64.qcow2'));
  assert.equal((await api.get('/cluster/nextid')).body.data, '101');
  assert.equal(s.violations.length, 0);
});

test('storage: shared storage is one pool seen from every node; upload and download-url add volumes', async () => {
  const s = await sim({ nodes: 2, guests: 0 });
  const api = await loggedIn(s);
  await api.wait(
    String(
      (
        await api.post('/nodes/pve1/storage/shared/download-url', {
          url: 'https://example.com/a.iso',
          filename: 'a.iso',
          content: 'iso',
        })
      ).body.data,
    ),
  );
  const seen = (await api.get('/nodes/pve2/storage/shared/content', { content: 'iso' })).body.data as Obj[];
  assert.deepEqual(
    seen.map((v) => v.volid),
    ['shared:iso/a.iso'],
  );
  const form = new FormData();
  form.set('content', 'iso');
  form.set('filename', new Blob(['hello iso']), 'small.iso');
  const res = await fetch(`${s.apiUrl}/nodes/pve1/storage/local/upload`, {
    method: 'POST',
    headers: api.headers,
    body: form,
  });
  assert.equal(res.status, 200);
  await api.wait(((await res.json()) as { data: string }).data);
  const local = (await api.get('/nodes/pve1/storage/local/content', { content: 'iso' })).body.data as Obj[];
  assert.equal(local.find((v) => v.volid === 'local:iso/small.iso')?.size, 9);
  const other = (await api.get('/nodes/pve2/storage/local/content', { content: 'iso' })).body.data as Obj[];
  assert.ok(!other.some((v) => v.volid === 'local:iso/small.iso'), 'local storage is per node');
});

test('pools, LXC containers with interfaces, cluster status and resources with a type filter', async () => {
  const s = await sim({ nodes: 3, guests: 10 });
  const api = await loggedIn(s);
  await api.post('/pools', { poolid: 'web', comment: 'frontends' });
  await api.put('/pools', { poolid: 'web', vms: '100,101' });
  const pools = (await api.get('/pools', { poolid: 'web' })).body.data as Array<{ members: Obj[] }>;
  assert.equal(pools[0]?.members.length, 2);
  const status = (await api.get('/cluster/status')).body.data as Obj[];
  assert.equal(status.filter((x) => x.type === 'node').length, 3);
  assert.equal(status[0]?.quorate, 1);
  const nodes = (await api.get('/cluster/resources', { type: 'node' })).body.data as Obj[];
  assert.equal(nodes.length, 3);
  const vms = (await api.get('/cluster/resources', { type: 'vm' })).body.data as Obj[];
  assert.equal(vms.length, 10);
  assert.equal(vms.filter((v) => v.type === 'lxc').length, 2);
  const ct = vms.find((v) => v.type === 'lxc' && v.status === 'running') ?? vms.find((v) => v.type === 'lxc');
  assert.ok(ct);
  if (ct.status !== 'running')
    await api.wait(String((await api.post(`/nodes/${ct.node}/lxc/${ct.vmid}/status/start`)).body.data));
  const ifs = (await api.get(`/nodes/${ct.node}/lxc/${ct.vmid}/interfaces`)).body.data as Obj[];
  assert.equal(ifs[1]?.name, 'eth0');
  s.faults.nodeOffline('pve2');
  const off = await api.get('/nodes/pve2/qemu');
  assert.equal(off.status, 595);
  const after = (await api.get('/cluster/resources', { type: 'node' })).body.data as Obj[];
  assert.equal(after.find((n) => n.node === 'pve2')?.status, 'offline');
});
