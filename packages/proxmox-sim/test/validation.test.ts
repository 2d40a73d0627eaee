import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedIn, sim } from './helpers.js';

const guests = [{ vmid: 100, node: 'pve1', status: 'stopped' as const }];

test('a wrong type answers 400 Parameter verification failed with the errors map, and is recorded', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  const a = await api.put('/nodes/pve1/qemu/100/config', { cores: 'many' });
  assert.equal(a.status, 400);
  assert.equal(a.reason, 'Parameter verification failed.');
  assert.equal(a.body.data, null);
  assert.equal(a.body.message, 'Parameter verification failed.\n');
  assert.deepEqual(a.body.errors, { cores: "type check ('integer') failed - got 'many'" });
  assert.equal(s.violations.length, 1);
  assert.equal(s.violations[0]?.template, '/nodes/{node}/qemu/{vmid}/config');
});

test('enum, range, pattern, maxLength, required and unknown parameters', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  const bad = await api.put('/nodes/pve1/qemu/100/config', { ostype: 'beos', cores: 0, bogus: 1, tags: 'a b!' });
  assert.equal(bad.status, 400);
  const e = bad.body.errors ?? {};
  assert.match(e.ostype ?? '', /does not have a value in the enumeration/);
  assert.equal(e.cores, 'value must have a minimum value of 1');
  assert.equal(e.bogus, 'property is not defined in schema and the schema does not allow additional properties');
  assert.match(e.tags ?? '', /invalid format/);
  const missing = await api.post('/nodes/pve1/qemu/100/snapshot', {});
  assert.equal(missing.body.errors?.snapname, 'property is missing and it is not optional');
  const vmid = await api.get('/nodes/pve1/qemu/99/status/current');
  assert.equal(vmid.status, 400);
  assert.ok(vmid.body.errors?.vmid);
  const tooLong = await api.post('/access/ticket', { username: 'x'.repeat(65), password: 'p' });
  assert.equal(tooLong.body.errors?.username, 'value may only be 64 characters long');
  const range = await api.get('/nodes/pve1/tasks', { limit: -1 });
  assert.equal(range.body.errors?.limit, 'value must have a minimum value of 0');
  // The format is checked before the pattern, as PVE does.
  const format = await api.get('/cluster/replication/abc');
  assert.equal(format.body.errors?.id, "invalid format - invalid replication job id 'abc'");
  const pattern = await api.put('/nodes/pve1/qemu/100/config', { startdate: 'tomorrow' });
  assert.equal(pattern.body.errors?.startdate, 'value does not match the regex pattern');
  assert.equal(s.violations.length, 7);
});

test('booleans in every form PVE accepts, numbered params, option strings with default keys and aliases', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  for (const v of ['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off']) {
    const a = await api.put('/nodes/pve1/qemu/100/config', { onboot: v });
    assert.equal(a.status, 200, v);
  }
  const ok = await api.put('/nodes/pve1/qemu/100/config', {
    net3: 'virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1',
    net4: 'model=e1000,bridge=vmbr0',
    ipconfig3: 'ip=10.0.0.5/24,gw=10.0.0.1',
  });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const notBool = await api.put('/nodes/pve1/qemu/100/config', { onboot: 'maybe' });
  assert.equal(notBool.body.errors?.onboot, "type check ('boolean') failed - got 'maybe'");
  const badNet = await api.put('/nodes/pve1/qemu/100/config', { net0: 'virtio,bridge=vmbr0,speed=9' });
  assert.match(badNet.body.errors?.net0 ?? '', /^invalid format - format error\nspeed: property is not defined/);
  const badMac = await api.put('/nodes/pve1/qemu/100/config', { net0: 'virtio=zz:24:11:00:00:01' });
  assert.match(badMac.body.errors?.net0 ?? '', /macaddr/);
  const badIndex = await api.put('/nodes/pve1/qemu/100/config', { scsi31: 'local:1' });
  assert.ok(badIndex.body.errors?.scsi31, 'scsi is 0 to 30');
  const badUrlenc = await api.put('/nodes/pve1/qemu/100/config', { sshkeys: 'ssh-ed25519 AAAA me@host' });
  assert.match(badUrlenc.body.errors?.sshkeys ?? '', /urlencoded/);
});

test('JSON bodies validate like form bodies; unknown paths and methods answer 501 and are recorded', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  const a = await api.call('PUT', '/nodes/pve1/qemu/100/config', { cores: 4, memory: '4096' }, true);
  assert.equal(a.status, 200);
  const cfg = await api.get('/nodes/pve1/qemu/100/config');
  assert.equal((cfg.body.data as Record<string, unknown>).cores, 4);
  assert.equal(s.violations.length, 0);
  const nope = await api.get('/nodes/pve1/nothing-here');
  assert.equal(nope.status, 501);
  const method = await api.call('PATCH', '/version');
  assert.equal(method.status, 501);
  assert.equal(s.violations.length, 2);
});

test('operations without a model answer data shaped by their returns schema', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  const ha = await api.get('/cluster/ha/resources');
  assert.equal(ha.status, 200);
  assert.deepEqual(ha.body.data, []);
  const dir = await api.get('/nodes/pve1');
  assert.ok((dir.body.data as Array<{ name: string }>).some((d) => d.name === 'qemu'));
  assert.ok(!s.modelledPaths().includes('GET /cluster/ha/resources'));
  assert.ok(s.modelledPaths().includes('POST /nodes/{node}/qemu/{vmid}/status/start'));
});
