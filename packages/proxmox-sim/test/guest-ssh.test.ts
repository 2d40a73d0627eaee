import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import type { Simulator, SimulatorOptions } from '@vmplane/proxmox-sim';
import { type Raw, sim } from './helpers.js';
import { clientKey, type Login, sshConnect, sshExec, sshStart } from './provisioning-helpers.js';

const BOOT = 60_000;
const alice = clientKey();
const mallory = clientKey();

/** A simulator whose guests boot only when the test advances the clock by BOOT. */
async function bootSim(options: SimulatorOptions = {}): Promise<{ s: Simulator; api: Raw }> {
  const s = await sim({ nodes: 1, guests: 0, bootDelayMs: BOOT, guestSshPort: 0, ...options });
  const { Raw } = await import('./helpers.js');
  return { s, api: new Raw(s).useToken() };
}

/** Creates and starts a VM from the seeded cloud image with cloud-init on `ip`. */
async function provision(api: Raw, vmid: number, ip: string, extra: Record<string, string> = {}): Promise<void> {
  const create = await api.post('/nodes/pve1/qemu', {
    vmid,
    name: `vm${vmid}`,
    scsi0: 'local:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2',
    ide2: 'local:cloudinit',
    net0: 'virtio,bridge=vmbr0',
    agent: '1',
    ciuser: 'debian',
    cipassword: 'hunter2',
    sshkeys: encodeURIComponent(`${alice.publicKey}\n`),
    ipconfig0: `ip=${ip}/24,gw=127.77.0.1`,
    ...extra,
  });
  assert.equal(create.status, 200, JSON.stringify(create.body));
  assert.equal((await api.wait(String(create.body.data))).exitstatus, 'OK');
  await power(api, vmid, 'start');
}

async function power(api: Raw, vmid: number, action: string): Promise<void> {
  const a = await api.post(`/nodes/pve1/qemu/${vmid}/status/${action}`);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal((await api.wait(String(a.body.data))).exitstatus, 'OK');
}

async function booted(s: Simulator, vmid: number): Promise<Login> {
  s.clock.advance(BOOT);
  const at = await s.waitForGuestSsh(vmid);
  return { ...at, username: 'debian', privateKey: alice.privateKey, hostKey: s.guestHostKey };
}

/** Whether a TCP connection to the address is refused. */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

test('a booting guest: no agent and no SSH until it has booted, then SSH on its ipconfig0 address by key or password', async () => {
  const { s, api } = await bootSim();
  await provision(api, 9101, '127.77.0.101');
  assert.equal(s.guestSsh(9101), undefined, 'still booting');
  const early = await api.post('/nodes/pve1/qemu/9101/agent/ping');
  assert.equal(early.reason, 'QEMU guest agent is not running');

  const login = await booted(s, 9101);
  assert.equal(login.host, '127.77.0.101');
  assert.deepEqual(s.guestSsh(9101), { host: login.host, port: login.port });
  assert.equal((await api.post('/nodes/pve1/qemu/9101/agent/ping')).status, 200);
  assert.match(s.guestHostKey, /^ssh-ed25519 AAAA\S+ vmplane-proxmox-sim$/);

  assert.deepEqual(await sshExec(login, 'whoami'), { code: 0, stdout: 'debian\n', stderr: '' });
  const byPassword = { host: login.host, port: login.port, username: 'debian', password: 'hunter2' };
  assert.deepEqual(await sshExec(byPassword, 'hostname'), { code: 0, stdout: 'vm9101\n', stderr: '' });

  const denied = /All configured authentication methods failed/;
  await assert.rejects(sshConnect({ ...login, privateKey: mallory.privateKey }), denied);
  await assert.rejects(sshConnect({ ...byPassword, password: 'hunter3' }), denied);
  await assert.rejects(sshConnect({ ...login, username: 'root' }), denied);
  assert.equal(s.violations.length, 0);
});

test('commands over SSH: standard input, exit codes, chpasswd, sudo, unknown commands, a scripted command', async () => {
  const { s, api } = await bootSim({
    guestExec: async ({ command, stdin, user }) =>
      command === 'apply-config' ? { stdout: `${user} got ${(await stdin).length} bytes\n`, exitcode: 4 } : undefined,
  });
  await provision(api, 9102, '127.77.0.102');
  const login = await booted(s, 9102);
  assert.deepEqual(await sshExec(login, 'cat', 'secret on stdin\n'), {
    code: 0,
    stdout: 'secret on stdin\n',
    stderr: '',
  });
  assert.deepEqual(await sshExec(login, 'echo oops >&2; exit 3'), { code: 3, stdout: '', stderr: 'oops\n' });
  assert.deepEqual(await sshExec(login, 'terraform apply'), {
    code: 127,
    stdout: '',
    stderr: 'sh: 1: terraform: not found\n',
  });
  assert.deepEqual(await sshExec(login, 'apply-config', 'abc'), {
    code: 4,
    stdout: 'debian got 3 bytes\n',
    stderr: '',
  });
  // A command that reads no input runs without the client closing its input.
  assert.equal((await sshExec(login, 'true')).code, 0);

  // The password goes over stdin, never on the command line.
  assert.equal((await sshExec(login, 'chpasswd', 'debian:correct horse\n')).code, 1, 'only root may');
  assert.deepEqual(await sshExec(login, 'sudo chpasswd', 'debian:correct horse\n'), {
    code: 0,
    stdout: '',
    stderr: '',
  });
  const old = { host: login.host, port: login.port, username: 'debian', password: 'hunter2' };
  await assert.rejects(sshConnect(old), /authentication methods failed/);
  assert.equal((await sshExec({ ...old, password: 'correct horse' }, 'id -un')).stdout, 'debian\n');
  assert.deepEqual(await sshExec(login, 'sudo chpasswd', 'nobody:x\n'), {
    code: 1,
    stdout: '',
    stderr: "chpasswd: line 1: user 'nobody' does not exist\n",
  });
  assert.deepEqual(await sshExec(login, 'sudo sh -s', 'whoami\ncloud-init status --wait\n'), {
    code: 0,
    stdout: 'root\nstatus: done\n',
    stderr: '',
  });
});

test('reboot drops SSH and brings it back after the boot delay; stop and destroy take it down', async () => {
  const { s, api } = await bootSim();
  await provision(api, 9103, '127.77.0.103');
  const login = await booted(s, 9103);
  const open = await sshConnect(login);
  const dropped = new Promise<void>((resolve) => open.once('close', () => resolve()));
  await power(api, 9103, 'reboot');
  await dropped;
  assert.equal(s.guestSsh(9103), undefined);
  assert.equal(await refused(login.host, login.port), true);
  const back = await booted(s, 9103);
  assert.equal(back.host, login.host);
  assert.equal((await sshExec(back, 'whoami')).stdout, 'debian\n', 'cloud-init ran once: the account is still there');

  // A reboot from inside the guest: the connection goes without an exit status.
  assert.deepEqual(await sshExec(back, 'sudo reboot'), { code: undefined, stdout: '', stderr: '' });
  assert.equal(s.state.guests.get(9103)?.status, 'running');
  assert.equal(s.guestSsh(9103), undefined);
  const again = await booted(s, 9103);

  await power(api, 9103, 'shutdown');
  assert.equal(s.guestSsh(9103), undefined);
  assert.equal(await refused(again.host, again.port), true);
  await assert.rejects(s.waitForGuestSsh(9103), /VM 9103 is not running/);

  // Waiting from the moment the start is asked for; the guest never finishes booting, the VM stops.
  const start = await api.post('/nodes/pve1/qemu/9103/status/start');
  const waiting = assert.rejects(s.waitForGuestSsh(9103), /VM 9103 stopped/);
  assert.equal((await api.wait(String(start.body.data))).exitstatus, 'OK');
  await power(api, 9103, 'stop');
  await waiting;
  const destroy = await api.del('/nodes/pve1/qemu/9103');
  assert.equal((await api.wait(String(destroy.body.data))).exitstatus, 'OK');
  assert.equal(s.guestSsh(9103), undefined);
});

test('close() closes every guest SSH server; the default port is 2222', async () => {
  const { startSimulator } = await import('@vmplane/proxmox-sim');
  const s = await startSimulator({ nodes: 1, guests: 0, taskDuration: 10, bootDelayMs: 0 });
  try {
    const { Raw } = await import('./helpers.js');
    const api = new Raw(s).useToken();
    await provision(api, 9104, '127.77.0.104');
    const at = await s.waitForGuestSsh(9104);
    assert.deepEqual(at, { host: '127.77.0.104', port: 2222 });
  } finally {
    await s.close();
  }
  assert.equal(await refused('127.77.0.104', 2222), true);
});

test('faults: SSH silent (TCP accepted, no banner) or off (refused), commands that fail or hang, a silent agent', async () => {
  const { s, api } = await bootSim();
  await provision(api, 9105, '127.77.0.105');
  const login = await booted(s, 9105);

  s.faults.guest(9105, { ssh: 'silent' });
  assert.equal(await refused(login.host, login.port), false, 'the port accepts connections');
  await assert.rejects(sshConnect(login, 300), /Timed out while waiting for handshake/);
  s.faults.guest(9105, { ssh: 'off' });
  assert.equal(await refused(login.host, login.port), true);
  assert.equal(s.guestSsh(9105), undefined);
  s.faults.guest(9105, undefined);
  const on = await s.waitForGuestSsh(9105);
  assert.equal((await sshExec({ ...login, ...on }, 'true')).code, 0);

  s.faults.guest(9105, {
    commands: [
      { match: 'apt-get', exitcode: 100, stderr: 'E: Unable to locate package\n', times: 1 },
      { match: /^cloud-init status/, hang: true },
    ],
    agent: 'silent',
  });
  const cur = { ...login, ...on };
  assert.deepEqual(await sshExec(cur, 'sudo apt-get install -y nginx'), {
    code: 100,
    stdout: '',
    stderr: 'E: Unable to locate package\n',
  });
  assert.equal((await sshExec(cur, 'true')).code, 0);
  const ping = await api.post('/nodes/pve1/qemu/9105/agent/ping');
  assert.equal(ping.reason, 'QEMU guest agent is not running');

  // A hanging command ends only when the guest goes: here a reboot, which gives it no exit status.
  const hung = await sshStart(cur, 'cloud-init status --wait');
  assert.equal((await sshExec(cur, 'echo still here')).stdout, 'still here\n', 'the guest is not stuck');
  await power(api, 9105, 'reboot');
  assert.deepEqual(await hung.done, { code: undefined, stdout: '', stderr: '' });
});

test('a guest whose ipconfig0 is not on loopback boots but serves no SSH', async () => {
  const { s, api } = await bootSim();
  await provision(api, 9106, '10.0.0.6');
  s.clock.advance(BOOT);
  await assert.rejects(s.waitForGuestSsh(9106), /no loopback address/);
  assert.equal((await api.post('/nodes/pve1/qemu/9106/agent/ping')).status, 200, 'booted');
});
