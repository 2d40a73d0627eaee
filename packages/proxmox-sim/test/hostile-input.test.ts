import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { loggedIn, Raw, sim } from './helpers.js';

const guests = [{ vmid: 100, node: 'pve1', status: 'stopped' as const }];

async function putJson(api: Raw, path: string, body: unknown) {
  const res = await fetch(`${api.s.apiUrl}${path}`, {
    method: 'PUT',
    headers: { ...api.headers, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { data: unknown; errors?: Record<string, string> } };
}

test('a JSON array or object for a scalar parameter is refused with PVE 400 shape, and nothing changes', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = new Raw(s).useToken();
  const before = (await api.get('/nodes/pve1/qemu/100/config')).body.data as Record<string, unknown>;
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ cores: [1, 2] }, 'cores', "type check ('integer') failed - got ARRAY"],
    [{ name: ['a', 'b'] }, 'name', "type check ('string') failed - got ARRAY"],
    [{ onboot: [1] }, 'onboot', "type check ('boolean') failed - got ARRAY"],
    [{ memory: { current: 1024 } }, 'memory', "type check ('string') failed - got HASH"],
    [{ net1: ['virtio,bridge=vmbr0'] }, 'net1', "type check ('string') failed - got ARRAY"],
  ];
  for (const [body, key, message] of cases) {
    const r = await putJson(api, '/nodes/pve1/qemu/100/config', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.data, null);
    assert.deepEqual(r.body.errors, { [key]: message });
  }
  const after = (await api.get('/nodes/pve1/qemu/100/config')).body.data as Record<string, unknown>;
  assert.deepEqual(after, before, 'no refused request changed the config');
  assert.equal(s.violations.length, cases.length);
});

test('repeated form fields are joined with NUL as PVE does: arrays take them, scalars refuse them', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'running' }] });
  const api = new Raw(s).useToken();
  const form = async (method: string, path: string, body: string) => {
    const res = await fetch(`${s.apiUrl}${path}`, {
      method,
      headers: { ...api.headers, 'Content-Type': 'application/x-www-form-urlencoded' },
      body,
    });
    return { status: res.status, body: (await res.json()) as { data: unknown; errors?: Record<string, string> } };
  };
  const twice = await form('PUT', '/nodes/pve1/qemu/100/config', 'cores=1&cores=2');
  assert.equal(twice.status, 400);
  assert.equal(twice.body.errors?.cores, "type check ('integer') failed - got '1\u00002'");
  const cfg = (await api.get('/nodes/pve1/qemu/100/config')).body.data as Record<string, unknown>;
  assert.equal(cfg.cores, 2, 'the seeded value, not the last of the repeated ones');
  // An array parameter sent as repeated fields, as PVE's own clients do.
  const exec = await form('POST', '/nodes/pve1/qemu/100/agent/exec', 'command=echo&command=hello');
  assert.equal(exec.status, 200, JSON.stringify(exec.body));
  const pid = (exec.body.data as { pid: number }).pid;
  const out = await api.get('/nodes/pve1/qemu/100/agent/exec-status', { pid });
  assert.equal((out.body.data as { 'out-data': string })['out-data'], 'hello\n');
});

test('violations keep parameter names and types, never values; the answer still quotes them as PVE does', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  const secrets = ['Sh0rt!7', 'secret-cores-value', 'secret-os-type', 'secret-model', 'hunter2-array'];
  const user = await api.post('/access/users', { userid: 'bob@pve', password: secrets[0] as string });
  assert.equal(user.status, 400);
  assert.equal(user.body.errors?.password, 'value must be at least 8 characters long');
  const cfg = await api.put('/nodes/pve1/qemu/100/config', {
    cores: secrets[1] as string,
    ostype: secrets[2] as string,
    net1: `model=${secrets[3]},bridge=vmbr0`,
  });
  assert.equal(cfg.status, 400);
  assert.equal(cfg.body.errors?.cores, `type check ('integer') failed - got '${secrets[1]}'`);
  assert.match(cfg.body.errors?.ostype ?? '', new RegExp(`^value '${secrets[2]}' does not have a value`));
  assert.match(cfg.body.errors?.net1 ?? '', new RegExp(`model: value '${secrets[3]}' does not have a value`));
  const login = await fetch(`${s.apiUrl}/access/ticket`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'root@pam', password: [secrets[4]] }),
  });
  assert.equal(login.status, 400);

  assert.equal(s.violations.length, 3);
  const [v1, v2, v3] = s.violations;
  assert.deepEqual(v1?.params, { password: 'string', userid: 'string' });
  assert.deepEqual(v1?.errors, { password: 'value must be at least 8 characters long' });
  assert.deepEqual(v2?.params, { cores: 'string', net1: 'string', node: 'string', ostype: 'string', vmid: 'string' });
  assert.equal(v2?.errors.cores, "type check ('integer') failed - got '***'");
  assert.match(v2?.errors.ostype ?? '', /^value '\*\*\*' does not have a value in the enumeration 'other, /);
  assert.match(v2?.errors.net1 ?? '', /model: value '\*\*\*' does not have a value/);
  assert.deepEqual(v3?.params, { password: 'array', username: 'string' });
  for (const printed of [JSON.stringify(s.violations), inspect(s.violations, { depth: null })]) {
    for (const secret of secrets) assert.ok(!printed.includes(secret), `${secret} is not in the violations`);
  }
});

test('scan/iscsi with a hostile portal is refused; a real portal is accepted', async () => {
  const s = await sim({ nodes: 1, guests: 0 });
  const api = new Raw(s).useToken();
  for (const portal of ['../../etc \0', 'a b', '10.0.0.1:80:90', '[zz::1]:3260', '']) {
    const r = await api.get('/nodes/pve1/scan/iscsi', { portal });
    assert.equal(r.status, 400, JSON.stringify(portal));
    assert.ok(r.body.errors?.portal, JSON.stringify(portal));
  }
  for (const portal of ['10.0.0.1', '10.0.0.1:3260', 'san.example.com', '[fd00::1]:3260']) {
    const r = await api.get('/nodes/pve1/scan/iscsi', { portal });
    assert.equal(r.status, 200, `${portal}: ${JSON.stringify(r.body)}`);
  }
});

test('named formats on the wire: node, storage, volume, MAC, tags, cloud-init addresses, startup, boot order', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = new Raw(s).useToken();
  const bad: Array<[string, string]> = [
    ['tags', 'a b!'],
    ['startup', 'order=x'],
    ['boot', 'order=scsi0;floppy9'],
    ['ipconfig0', 'ip=10.0.0.5/33'],
    ['ipconfig0', 'ip=10.0.0.5/24,gw=300.1.1.1'],
    ['hostpci0', 'host=0000:01:00.0,mapping=gpu'],
    ['smbios1', 'uuid=not-a-uuid'],
    ['watchdog', 'model=i6300esb,action=explode'],
    ['rng0', 'source=/dev/zero'],
    ['cpu', 'cputype=host,flags=aes'],
    ['hotplug', 'disk,floppy'],
    ['affinity', '3-1'],
    ['vmstatestorage', '1bad'],
    ['sshkeys', 'ssh-ed25519 AAAA me@host'],
    ['nameserver', '1.2.3.4 not_a_host!'],
  ];
  for (const [key, value] of bad) {
    const r = await api.put('/nodes/pve1/qemu/100/config', { [key]: value });
    assert.equal(r.status, 400, `${key}=${value}`);
    assert.match(r.body.errors?.[key] ?? '', /^invalid format - /, `${key}=${value}: ${JSON.stringify(r.body.errors)}`);
  }
  const good: Array<[string, string]> = [
    ['tags', 'prod;web-1'],
    ['startup', 'order=1,up=30'],
    ['boot', 'order=scsi0;net0'],
    ['ipconfig0', 'ip=10.0.0.5/24,gw=10.0.0.1,ip6=auto'],
    ['hostpci0', 'host=0000:01:00.0;0000:01:00.1,pcie=1'],
    ['smbios1', 'uuid=8e0c6a8c-1234-4bcd-9def-0123456789ab,manufacturer=UHJveG1veA=='],
    ['watchdog', 'model=ib700,action=reset'],
    ['rng0', 'source=/dev/urandom,max_bytes=1024'],
    ['cpu', 'cputype=host,flags=+aes;-pcid'],
    ['hotplug', 'disk,network,usb'],
    ['affinity', '0-3,8'],
    ['sshkeys', 'ssh-ed25519%20AAAA%20me%40host'],
    ['nameserver', '1.1.1.1 dns.example.com'],
  ];
  for (const [key, value] of good) {
    const r = await api.put('/nodes/pve1/qemu/100/config', { [key]: value });
    assert.equal(r.status, 200, `${key}=${value}: ${JSON.stringify(r.body)}`);
  }
  const node = await api.get('/nodes/-pve1/status');
  assert.equal(node.status, 400);
  assert.equal(node.body.errors?.node, 'invalid format - value does not look like a valid node name');
  const vol = await api.get('/nodes/pve1/storage/local/content', { content: 'isos' });
  assert.equal(vol.status, 400);
});
