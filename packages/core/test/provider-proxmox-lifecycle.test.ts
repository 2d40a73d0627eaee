import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ProxmoxClient } from '@vmplane/proxmox';
import { InvalidRequestError, UnsupportedError } from '../src/errors.js';
import type { ProxmoxRef } from '../src/model/instance.js';
import {
  backendStatus,
  createProxmoxProvider,
  hypemanState,
  type ProxmoxProvider,
} from '../src/providers/proxmox/index.js';
import { GATEWAY, startSim } from './support/sim.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function setUp(
  guests: import('@vmplane/proxmox-sim').GuestSpec[],
  agent?: import('@vmplane/proxmox-sim').AgentScript,
) {
  const w = await startSim({ guests, ...(agent ? { agent } : {}) });
  const client = new ProxmoxClient({
    baseUrl: w.sim.url,
    tokenId: w.sim.credentials.tokenId,
    tokenSecret: w.sim.credentials.tokenSecret,
    retry: { initial: 5, max: 20 },
  });
  after(() => client.close());
  const keyDir = await mkdtemp(join(tmpdir(), 'vmpt-pve-'));
  dirs.push(keyDir);
  const provider: ProxmoxProvider = createProxmoxProvider({
    name: 'lab',
    client,
    storage: 'local',
    sshKeyDir: join(keyDir, 'ssh'),
    sshPort: w.sshPort,
    readiness: 'agent',
    bootTimeoutMs: 10_000,
    network: { gateway: GATEWAY },
  });
  return { ...w, client, provider };
}

const ref = (vmid: number, node = 'pve1', kind: 'qemu' | 'lxc' = 'qemu'): ProxmoxRef => ({
  type: 'proxmox',
  node,
  vmid,
  kind,
});

describe('Proxmox states', () => {
  it('maps status, lock and qmpstatus onto hypeman states', () => {
    const rows: [Parameters<typeof hypemanState>, string][] = [
      [['qemu', 'running'], 'Running'],
      [['qemu', 'running', undefined, 'running'], 'Running'],
      [['qemu', 'running', 'migrate', 'postmigrate'], 'Running'],
      [['qemu', 'running', undefined, 'paused'], 'Paused'],
      [['qemu', 'running', undefined, 'suspended'], 'Paused'],
      [['qemu', 'paused'], 'Paused'],
      [['qemu', 'suspended'], 'Paused'],
      [['qemu', 'running', undefined, 'shutdown'], 'Shutdown'],
      [['qemu', 'running', undefined, 'prelaunch'], 'Created'],
      [['qemu', 'prelaunch'], 'Created'],
      [['qemu', 'running', undefined, 'guest-panicked'], 'Unknown'],
      [['qemu', 'stopped', 'suspended'], 'Standby'],
      [['qemu', 'stopped', 'create'], 'Created'],
      [['qemu', 'stopped', 'clone'], 'Created'],
      [['qemu', 'stopped', 'backup'], 'Stopped'],
      [['qemu', 'stopped'], 'Stopped'],
      [['qemu', 'unknown'], 'Unknown'],
      [['qemu', undefined], 'Unknown'],
      [['lxc', 'running'], 'Running'],
      [['lxc', 'stopped'], 'Stopped'],
      [['lxc', 'stopped', 'create'], 'Created'],
      [['lxc', 'paused'], 'Paused'],
    ];
    for (const [args, want] of rows) assert.equal(hypemanState(...args), want, JSON.stringify(args));
    assert.equal(backendStatus('stopped', 'suspended'), 'stopped (lock: suspended)');
    assert.equal(backendStatus('running', undefined, 'paused'), 'running (qmp: paused)');
  });
});

describe('Proxmox lifecycle', () => {
  it('lists every guest from one request, with states and tags, and reports what is used', async () => {
    const w = await setUp([
      {
        vmid: 100,
        node: 'pve1',
        status: 'running',
        config: { tags: 'vmplane;web', ipconfig0: 'ip=10.9.0.100/24,gw=10.9.0.1' },
      },
      { vmid: 101, node: 'pve2', status: 'stopped', config: { ipconfig0: 'ip=10.9.0.101/24' } },
      {
        vmid: 102,
        node: 'pve1',
        type: 'lxc',
        status: 'running',
        config: { net0: 'name=eth0,bridge=vmbr0,ip=10.9.0.102/24' },
      },
      { vmid: 9000, node: 'pve1', status: 'stopped', template: true },
    ]);
    w.sim.requests.reset();
    const list = await w.provider.list();
    assert.equal(w.sim.requests.total, 1);
    assert.deepEqual(
      list.map((g) => [g.ref, g.state]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        [ref(100), 'Running'],
        [ref(101, 'pve2'), 'Stopped'],
        [ref(102, 'pve1', 'lxc'), 'Running'],
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    assert.deepEqual(list.find((g) => g.ref.type === 'proxmox' && g.ref.vmid === 100)?.tags, { vmplane: '', web: '' });
    const used = await w.provider.used();
    assert.deepEqual([...used.vmids].sort(), [100, 101, 102, 9000]);
    assert.deepEqual([...used.ipv4].sort(), ['10.9.0.100', '10.9.0.101', '10.9.0.102']);
    const nodes = await w.provider.nodes();
    assert.deepEqual(
      nodes.map((n) => [n.name, n.online, n.cpus]),
      [
        ['pve1', true, 16],
        ['pve2', true, 16],
      ],
    );
    assert.deepEqual((await w.provider.probe()).reachable, true);
    await assert.rejects(
      w.provider.start({ type: 'lxd', project: 'default', name: 'x', kind: 'container' }),
      InvalidRequestError,
    );
  });

  it('stops, starts, shuts down, reboots, hibernates and resumes a VM', async () => {
    const w = await setUp([{ vmid: 110, node: 'pve1', status: 'running', config: { agent: '1' } }]);
    const vm = ref(110);
    const state = async () => (await w.provider.get(vm))?.state;
    await w.provider.stop(vm, { force: true });
    assert.equal(await state(), 'Stopped');
    await w.provider.start(vm);
    assert.equal(await state(), 'Running');
    await w.provider.waitReady(vm, { timeout: 10_000 });
    await w.provider.reboot(vm);
    assert.equal(await state(), 'Running');
    await w.provider.stop(vm);
    assert.equal(await state(), 'Stopped');
    await w.provider.start(vm);
    await w.provider.standby(vm);
    assert.equal(await state(), 'Standby');
    assert.equal(
      (await w.provider.list()).find((g) => g.ref.type === 'proxmox' && g.ref.vmid === 110)?.state,
      'Standby',
    );
    await w.provider.resume(vm);
    assert.equal(await state(), 'Running');
    const tasks = w.sim.requests.entries.filter((e) => e.method === 'POST' && /status\/(stop|suspend)$/.test(e.path));
    assert.deepEqual(tasks[0]?.params, ['skiplock']);
    assert.ok(tasks.some((t) => t.path.endsWith('suspend') && t.params?.includes('todisk')));
    assert.ok(w.sim.requests.count('POST', '/nodes/{node}/qemu/{vmid}/status/shutdown') >= 1);
  });

  it('snapshots with the RAM of a running VM, rolls back and deletes', async () => {
    const w = await setUp([{ vmid: 120, node: 'pve1', status: 'running' }]);
    const vm = ref(120);
    await w.provider.snapshot(vm, 'before');
    await w.provider.snapshot(vm, 'disk_only', { stateful: false });
    const snaps = await w.client.qemu('pve1', 120).snapshots.list();
    assert.deepEqual(
      snaps.map((s) => [s.name, Boolean(s.vmstate)]),
      [
        ['before', true],
        ['disk_only', false],
      ],
    );
    await w.provider.restoreSnapshot(vm, 'before');
    await w.provider.deleteSnapshot(vm, 'disk_only');
    assert.deepEqual(
      (await w.client.qemu('pve1', 120).snapshots.list()).map((s) => s.name),
      ['before'],
    );
  });

  it('resizes CPU, memory and the root disk, forks, migrates and destroys', async () => {
    const w = await setUp([{ vmid: 130, node: 'pve1', status: 'stopped' }]);
    const vm = ref(130);
    await w.provider.setCpu(vm, 4);
    await w.provider.setMemory(vm, 4096);
    const before = (await w.client.qemu('pve1', 130).config({ fresh: true })).disks.find((d) => d.device === 'scsi0');
    await w.provider.growDisk(vm, 2);
    const config = await w.client.qemu('pve1', 130).config({ fresh: true });
    assert.equal(config.cores, 4);
    assert.equal(config.memoryMiB, 4096);
    assert.equal(config.disks.find((d) => d.device === 'scsi0')?.sizeBytes, (before?.sizeBytes ?? 0) + 2 * 1024 ** 3);
    await assert.rejects(w.provider.growDisk(vm, 0));

    const copy = await w.provider.fork(vm, 'web copy', { vmid: 131 });
    assert.deepEqual(copy, ref(131));
    assert.equal((await w.client.qemu('pve1', 131).config({ fresh: true })).name, 'web-copy');
    const clone = w.sim.requests.entries.find((e) => e.path.endsWith('/clone'));
    assert.ok(clone?.params?.includes('full'));

    const moved = await w.provider.migrate(vm, 'pve2');
    assert.deepEqual(moved, ref(130, 'pve2'));
    // The old ref still works: the provider finds where the guest went.
    await w.provider.start(vm);
    const seen = await w.provider.get(vm);
    assert.equal(seen?.ref.type === 'proxmox' ? seen.ref.node : undefined, 'pve2');
    assert.equal(seen?.state, 'Running');

    await w.provider.destroy(vm);
    await w.provider.destroy(copy);
    assert.equal(await w.provider.get(vm), undefined);
    assert.equal(await w.provider.get(copy), undefined);
    // Destroying what is gone succeeds.
    await w.provider.destroy(vm);
    const del = w.sim.requests.entries.filter((e) => e.method === 'DELETE' && /\/qemu\/\d+$/.test(e.path));
    assert.ok(del.every((d) => d.params?.includes('purge') && d.params?.includes('destroy-unreferenced-disks')));
  });

  it('reads and writes files and stats through the guest agent', async () => {
    const stat = (path: string) =>
      path === '/etc/motd'
        ? { stdout: "81a4|6|'/etc/motd'\n" }
        : path === '/etc/alternatives/editor'
          ? { stdout: "a1ff|18|'/etc/alternatives/editor' -> '/usr/bin/vim.basic'\n" }
          : { exitcode: 1, stderr: `stat: cannot statx '${path}': No such file or directory\n` };
    const w = await setUp(
      [
        { vmid: 140, node: 'pve1', status: 'running', config: { agent: '1' }, files: { '/etc/motd': 'hello\n' } },
        { vmid: 141, node: 'pve1', type: 'lxc', status: 'running' },
      ],
      // The simulator's agent knows no `stat`: this script answers as GNU stat does.
      ({ command }) => {
        const m = /^stat -c '%f\|%s\|%N' -- (\S+)$/.exec(command[2] ?? '');
        return command[0] === 'sh' && m?.[1] ? stat(m[1].replace(/^'|'$/g, '')) : undefined;
      },
    );
    const vm = ref(140);
    let text = '';
    for await (const chunk of await w.provider.readFile(vm, '/etc/motd')) text += Buffer.from(chunk).toString();
    assert.equal(text, 'hello\n');
    await w.provider.writeFile(vm, '/etc/issue', Buffer.from('vmplane\n'));
    let back = '';
    for await (const chunk of await w.provider.readFile(vm, '/etc/issue')) back += Buffer.from(chunk).toString();
    assert.equal(back, 'vmplane\n');
    assert.deepEqual(await w.provider.stat(vm, '/etc/motd'), {
      exists: true,
      is_dir: false,
      is_file: true,
      is_symlink: false,
      mode: 0o644,
      size: 6,
    });
    assert.equal((await w.provider.stat(vm, '/etc/alternatives/editor')).link_target, '/usr/bin/vim.basic');
    assert.deepEqual(await w.provider.stat(vm, '/nope'), { exists: false });
    await assert.rejects(w.provider.readFile(ref(141, 'pve1', 'lxc'), '/etc/motd'), UnsupportedError);
    const proc = await w.provider.exec(vm, { command: ['echo', 'hi there'] });
    let out = '';
    for await (const chunk of proc.stdout) out += Buffer.from(chunk).toString();
    assert.equal(await proc.exit, 0);
    assert.equal(out, 'hi there\n');
    const stats = await w.provider.stats(vm);
    assert.ok(stats.allocatedMemoryBytes > 0 && stats.allocatedVcpus >= 1);
  });
});
