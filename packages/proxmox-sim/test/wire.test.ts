import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import proxmoxApi from 'proxmox-api';
import { runProcess } from '../../../tools/readme-examples.js';
import { sim } from './helpers.js';

// scripts/lib.sh installs python3-proxmoxer: a missing package is a broken setup, and the test fails
// rather than skips (a skipped test must never count as a pass).
const PYTHON = '/usr/bin/python3';

const script = `
import sys, time
from proxmoxer import ProxmoxAPI
host, port, password = sys.argv[1], sys.argv[2], sys.argv[3]
pve = ProxmoxAPI(host, port=int(port), user="root@pam", password=password, verify_ssl=False)
nodes = sorted(n["node"] for n in pve.nodes.get())
print("nodes", ",".join(nodes))
upid = pve.nodes("pve1").qemu(100).status.start.post()
print("upid", upid)
for _ in range(500):
    st = pve.nodes("pve1").tasks(upid).status.get()
    if st["status"] == "stopped":
        break
    time.sleep(0.02)
print("exit", st["exitstatus"])
print("status", pve.nodes("pve1").qemu(100).status.current.get()["status"])
`;

test('Debian python3-proxmoxer logs in, lists nodes, starts a VM and waits for the task', async () => {
  assert.ok(
    existsSync(PYTHON),
    `${PYTHON} is missing: run scripts/setup.sh (scripts/lib.sh installs python3-proxmoxer)`,
  );
  const probe = spawnSync(PYTHON, ['-c', 'import proxmoxer'], { encoding: 'utf8' });
  assert.equal(
    probe.status,
    0,
    `${PYTHON} cannot import proxmoxer (apt package python3-proxmoxer, installed by scripts/lib.sh): ${probe.stderr}`,
  );
  const s = await sim({ nodes: 2, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }], tls: true });
  // Asynchronously: the simulator answers from this very process.
  const r = await runProcess(PYTHON, ['-c', script, s.host, String(s.port), s.credentials.password], {
    env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    timeout: 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], 'nodes pve1,pve2');
  assert.match(lines[1] ?? '', /^upid UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmstart:100:root@pam:$/);
  assert.equal(lines[2], 'exit OK');
  assert.equal(lines[3], 'status running');
  assert.deepEqual(s.violations, []);
});

test('the npm proxmox-api client logs in, lists nodes, starts a VM and waits for the task', async () => {
  const s = await sim({ nodes: 2, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }] });
  const pve = proxmoxApi({
    host: s.host,
    port: s.port,
    schema: 'http',
    username: 'root@pam',
    password: s.credentials.password,
  });
  const nodes = await pve.nodes.$get();
  assert.deepEqual(nodes.map((n) => n.node).sort(), ['pve1', 'pve2']);
  const upid = await pve.nodes.$('pve1').qemu.$(100).status.start.$post();
  let status = await pve.nodes.$('pve1').tasks.$(upid).status.$get();
  while (status.status !== 'stopped') {
    await new Promise((r) => setTimeout(r, 10));
    status = await pve.nodes.$('pve1').tasks.$(upid).status.$get();
  }
  assert.equal(status.exitstatus, 'OK');
  const cur = await pve.nodes.$('pve1').qemu.$(100).status.current.$get();
  assert.equal(cur.status, 'running');
  assert.deepEqual(s.violations, []);
});
