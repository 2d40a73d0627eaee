import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Answer, loggedIn, type Raw, sim } from './helpers.js';

const agent = (vmid: number, cmd: string) => `/nodes/pve1/qemu/${vmid}/agent/${cmd}`;

/** PVE's answer to an agent call it cannot make: a 500 whose message is also the reason phrase. */
function assertRefused(a: Answer, message: string, what: string): void {
  assert.equal(a.status, 500, `${what}: ${JSON.stringify(a.body)}`);
  assert.equal(a.reason, message, what);
  assert.equal(a.body.message, `${message}\n`, what);
  assert.equal(a.body.data, null, what);
}

/** A read, a write and an exec: every agent call goes through the same checks. */
async function eachCall(api: Raw, vmid: number): Promise<Array<[string, Answer]>> {
  return [
    ['ping', await api.post(agent(vmid, 'ping'))],
    ['network-get-interfaces', await api.get(agent(vmid, 'network-get-interfaces'))],
    ['exec', await api.post(agent(vmid, 'exec'), { command: 'true' })],
    ['file-read', await api.get(agent(vmid, 'file-read'), { file: '/etc/hostname' })],
  ];
}

test("agent: a VM without an `agent` key is 'No QEMU guest agent configured', running or not", async () => {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 100, status: 'running' },
      { vmid: 101, status: 'stopped' },
    ],
  });
  const api = await loggedIn(s);
  for (const vmid of [100, 101]) {
    const put = await api.put(`/nodes/pve1/qemu/${vmid}/config`, { delete: 'agent' });
    assert.equal(put.status, 200);
    assert.equal(s.state.guests.get(vmid)?.config.agent, undefined);
    for (const [cmd, a] of await eachCall(api, vmid)) assertRefused(a, 'No QEMU guest agent configured', cmd);
  }
});

test("agent: a stopped VM is 'VM <vmid> is not running'", async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 120, status: 'stopped' }] });
  const api = await loggedIn(s);
  assert.equal(s.state.guests.get(120)?.config.agent, '1');
  for (const [cmd, a] of await eachCall(api, 120)) assertRefused(a, 'VM 120 is not running', cmd);
});

test("agent: configured on a running VM but not answering is 'QEMU guest agent is not running'", async () => {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 100, status: 'running', agentRunning: false },
      { vmid: 101, status: 'running' },
      { vmid: 102, status: 'running', config: { agent: '0' } },
      { vmid: 103, status: 'running', config: { agent: 'enabled=0,type=virtio' } },
    ],
  });
  const api = await loggedIn(s);
  // From the seed.
  for (const [cmd, a] of await eachCall(api, 100)) assertRefused(a, 'QEMU guest agent is not running', cmd);
  // An agent disabled in the config: the key is there, so PVE goes on to ping an agent that has no channel.
  for (const vmid of [102, 103])
    for (const [cmd, a] of await eachCall(api, vmid)) assertRefused(a, 'QEMU guest agent is not running', cmd);

  // At run time: the agent of 101 answers, then stops answering, then answers again.
  assert.equal((await api.post(agent(101, 'ping'))).status, 200);
  s.setAgentRunning(101, false);
  assert.equal(s.state.guests.get(101)?.agentRunning, false);
  for (const [cmd, a] of await eachCall(api, 101)) assertRefused(a, 'QEMU guest agent is not running', cmd);
  s.setAgentRunning(101, true);
  for (const [cmd, a] of await eachCall(api, 101)) assert.equal(a.status, 200, cmd);
  s.setAgentRunning(100, true);
  assert.equal((await api.post(agent(100, 'ping'))).status, 200);

  // The guest OS keeps not running its agent across a restart of the VM.
  s.setAgentRunning(101, false);
  await api.wait(String((await api.post('/nodes/pve1/qemu/101/status/stop')).body.data));
  assertRefused(await api.post(agent(101, 'ping')), 'VM 101 is not running', 'stopped');
  await api.wait(String((await api.post('/nodes/pve1/qemu/101/status/start')).body.data));
  assertRefused(await api.post(agent(101, 'ping')), 'QEMU guest agent is not running', 'restarted');

  assert.throws(() => s.setAgentRunning(999, true), /no QEMU VM 999/);
  assert.deepEqual(s.violations, []);
});

test("agent: a paused VM's agent cannot answer either", async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, status: 'running' }] });
  const api = await loggedIn(s);
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/suspend')).body.data));
  assert.equal(s.state.guests.get(100)?.qmpstatus, 'paused');
  assertRefused(await api.post(agent(100, 'ping')), 'QEMU guest agent is not running', 'paused');
  await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/resume')).body.data));
  assert.equal((await api.post(agent(100, 'ping'))).status, 200);
});

test('LXC interfaces: a running container lists its addresses; any other answers null, as PVE does', async () => {
  const s = await sim({
    nodes: 2,
    guests: [
      { vmid: 200, type: 'lxc', node: 'pve1', status: 'running' },
      { vmid: 201, type: 'lxc', node: 'pve1', status: 'stopped' },
      { vmid: 300, type: 'qemu', node: 'pve1', status: 'running' },
    ],
  });
  const api = await loggedIn(s);
  const running = await api.get('/nodes/pve1/lxc/200/interfaces');
  assert.equal(running.status, 200);
  const ifs = running.body.data as Array<Record<string, unknown>>;
  const eth0 = ifs.find((i) => i.name === 'eth0');
  const mac = /hwaddr=([0-9A-F:]{17})/i.exec(String(s.state.guests.get(200)?.config.net0))?.[1]?.toLowerCase();
  assert.ok(mac);
  assert.equal(eth0?.['hardware-address'], mac);
  assert.equal(eth0?.hwaddr, mac);
  const addresses = (eth0?.['ip-addresses'] ?? []) as Array<Record<string, unknown>>;
  const v4 = addresses.find((a) => a['ip-address-type'] === 'inet');
  assert.ok(v4, JSON.stringify(eth0));
  assert.equal(`${v4?.['ip-address']}/${v4?.prefix}`, eth0?.inet);
  assert.equal(ifs.find((i) => i.name === 'lo')?.inet, '127.0.0.1/8');

  // PVE finds no PID for these and answers 200 with data null, not an error.
  for (const path of [
    '/nodes/pve1/lxc/201/interfaces', // stopped
    '/nodes/pve2/lxc/200/interfaces', // on another node
    '/nodes/pve1/lxc/300/interfaces', // a VM
    '/nodes/pve1/lxc/999/interfaces', // nothing
  ]) {
    const a = await api.get(path);
    assert.equal(a.status, 200, path);
    assert.equal(a.body.data, null, path);
  }
  // Started, the container answers.
  await api.wait(String((await api.post('/nodes/pve1/lxc/201/status/start')).body.data));
  const started = (await api.get('/nodes/pve1/lxc/201/interfaces')).body.data as Array<{ name: string }>;
  assert.deepEqual(
    started.map((i) => i.name),
    ['lo', 'eth0'],
  );
});
