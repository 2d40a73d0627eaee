import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  decodeSshKeys,
  InvalidArgumentError,
  isDiskKey,
  type ProxmoxClient,
  UnauthorizedError,
} from '@vmplane/proxmox';
import type { Simulator } from '@vmplane/proxmox-sim';
import { passwordClient, sim, violations } from './sim.js';

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const seedGuests = [
  { vmid: 100, node: 'pve1', type: 'qemu' as const, name: 'web', status: 'running' as const, config: { agent: '1' } },
  { vmid: 101, node: 'pve1', type: 'qemu' as const, name: 'db', status: 'stopped' as const },
  { vmid: 102, node: 'pve1', type: 'qemu' as const, name: 'sleepy', status: 'stopped' as const },
  { vmid: 200, node: 'pve2', type: 'lxc' as const, name: 'ct', status: 'running' as const },
];

for (const tls of [false, true]) {
  describe(`guests over ${tls ? 'HTTPS' : 'HTTP'}`, () => {
    let s: Simulator;
    let pve: ProxmoxClient;
    const ready = (async () => {
      s = await sim({ nodes: 3, guests: seedGuests, tls });
      pve = passwordClient(s);
    })();

    test('cluster: status, resources, version, next id, tasks', async () => {
      await ready;
      const status = await pve.cluster.status();
      assert.equal(status.quorate, true);
      assert.equal(status.totalNodes, 3);
      assert.equal(status.onlineNodes, 3);
      assert.deepEqual(
        status.nodes.map((n) => [n.name, n.online]),
        [
          ['pve1', true],
          ['pve2', true],
          ['pve3', true],
        ],
      );
      const vms = await pve.cluster.resources({ type: 'vm' });
      assert.deepEqual(vms.map((r) => r.vmid).sort(), [100, 101, 102, 200]);
      assert.match((await pve.cluster.version()).version, /\d/);
      const next = await pve.cluster.nextId();
      assert.ok(next >= 100 && ![100, 101, 102, 200].includes(next));
      // A task this test started is listed, with what PVE says about it.
      const made = await pve.qemu('pve1', 101).snapshots.create('listed');
      await made.wait();
      const listed = (await pve.cluster.tasks()).find((t) => t.upid === made.upid);
      assert.deepEqual([listed?.node, listed?.type, listed?.id, listed?.status], ['pve1', 'qmsnapshot', '101', 'OK']);
      await (await pve.qemu('pve1', 101).snapshots.delete('listed')).wait();
      const agg = await pve.cluster.aggregate();
      assert.equal(agg.guests.length, 4);
      const shared = agg.storages.filter((x) => x.shared);
      for (const st of shared)
        assert.equal(agg.storages.filter((x) => x.storage === st.storage).length, 1, 'shared once');
    });

    test('nodes: list, status, config, network, storage and content', async () => {
      await ready;
      const nodes = await pve.nodes.list();
      assert.deepEqual(nodes.map((n) => n.node).sort(), ['pve1', 'pve2', 'pve3']);
      const node = pve.node('pve1');
      const seeded = s.state.nodes.get('pve1')!;
      const st = await node.status();
      assert.equal(st.cpuinfo.cpus, seeded.maxcpu);
      assert.equal(st.memory.total, seeded.maxmem);
      seeded.config.description = 'rack 4';
      assert.equal((await node.config()).description, 'rack 4');
      const bridge = (await node.network()).find((i) => i.iface === 'vmbr0');
      assert.equal(bridge?.type, 'bridge');
      assert.equal(bridge?.cidr, `${seeded.ip}/24`);
      const storages = await node.storages();
      assert.deepEqual(storages.map((x) => x.storage).sort(), [...s.state.storages.keys()].sort());
      const content = await node.storage('local').content();
      assert.deepEqual(content.map((c) => c.volid).sort(), [...s.state.volumesOf('pve1', 'local').keys()].sort());
      assert.ok(content.some((c) => c.volid === 'local:iso/debian-12.7.0-amd64-netinst.iso'));
      const qemu = await node.qemu.list();
      assert.deepEqual(qemu.map((g) => g.vmid).sort(), [100, 101, 102]);
      assert.deepEqual(
        (await pve.node('pve2').lxc.list()).map((g) => g.vmid),
        [200],
      );
    });

    test('guest details: status, parsed config, interfaces from the agent', async () => {
      await ready;
      const vm = pve.qemu('pve1', 100);
      const current = await vm.status.current();
      assert.equal(current.status, 'running');
      const d = await vm.details();
      const seeded = s.state.guests.get(100)!.config;
      assert.equal(d.config.name, 'web');
      // The parsed config is the simulator's: the NIC's MAC and every disk key.
      const mac = /=([0-9a-f:]{17})/i.exec(String(seeded.net0))?.[1]?.toLowerCase();
      assert.ok(mac, String(seeded.net0));
      assert.equal(d.config.networks[0]?.macAddress?.toLowerCase(), mac);
      assert.deepEqual(
        d.config.disks.map((x) => x.device).sort(),
        Object.keys(seeded)
          .filter((k) => isDiskKey('qemu', k))
          .sort(),
      );
      // The agent reports that NIC, and ip() is the IPv4 address on it.
      const nic = d.interfaces?.find((i) => i['hardware-address']?.toLowerCase() === mac);
      const v4 = nic?.['ip-addresses']?.find((a) => a['ip-address-type'] === 'ipv4')?.['ip-address'];
      assert.match(v4 ?? '', /^\d+\.\d+\.\d+\.\d+$/);
      assert.equal(await vm.ip(), v4);
      const ct = await pve.lxc('pve2', 200).details();
      assert.equal(ct.config.name, 'ct');
      assert.equal(ct.config.disks[0]?.device, 'rootfs');
      const eth0 = ct.interfaces?.find((i) => i.name === 'eth0');
      assert.match(eth0?.inet ?? '', /^\d+\.\d+\.\d+\.\d+\/\d+$/);
      assert.equal(await pve.lxc('pve2', 200).ip(), eth0?.inet?.split('/')[0]);
    });

    test('config update: QEMU is a task, LXC is synchronous; resources and resize', async () => {
      await ready;
      const vm = pve.qemu('pve1', 101);
      await (await vm.setResources({ cores: 4, memoryMiB: 4096 })).wait();
      const c = await vm.config();
      assert.equal(c.cores, 4);
      assert.equal(c.memoryMiB, 4096);
      await (await vm.updateConfig({ description: 'temp', onboot: true })).wait();
      await (await vm.updateConfig({}, { delete: ['description'] })).wait();
      assert.equal((await vm.config()).description, undefined);
      const ct = pve.lxc('pve2', 200);
      await ct.setResources({ cores: 2, memoryMiB: 1024, swapMiB: 256 });
      assert.equal((await ct.config()).memoryMiB, 1024);
      const disk = (await vm.config()).disks.find((x) => !x.isCdrom)!;
      await (await vm.resize(disk.device, '+1G')).wait();
      const grown = (await vm.config()).disks.find((x) => x.device === disk.device)!;
      assert.equal(grown.sizeBytes, (disk.sizeBytes ?? 0) + 1024 ** 3);
      await assert.rejects(vm.resize(disk.device, 'lots'), InvalidArgumentError);
      await assert.rejects(vm.resize('rootfs', '+1G'), InvalidArgumentError, 'rootfs is an LXC disk');
    });

    test('power: start, suspend (also to disk), resume, reboot, reset, shutdown, stop', async () => {
      await ready;
      const vm = pve.qemu('pve1', 101);
      const state = async () => (await vm.status.current()).status;
      await (await vm.start()).wait();
      assert.equal(await state(), 'running');
      await (await vm.suspend()).wait();
      assert.equal((await vm.status.current()).qmpstatus, 'paused');
      await (await vm.resume()).wait();
      await (await vm.reboot()).wait();
      await (await vm.reset()).wait();
      await (await vm.shutdown({ forceStop: true })).wait();
      assert.equal(await state(), 'stopped');
      await (await vm.start()).wait();
      await (await vm.stop()).wait();
      assert.equal(await state(), 'stopped');
      const ct = pve.lxc('pve2', 200);
      await (await ct.suspend()).wait();
      await (await ct.resume()).wait();
      await (await ct.reboot()).wait();
      assert.equal((await ct.status.current()).status, 'running');
    });

    // PVE starts a VM hibernated to disk: its `suspended` lock is the one a start may override.
    test('hibernate: suspend to disk stops the VM, the next start resumes it', async () => {
      await ready;
      const vm = pve.qemu('pve1', 102);
      await (await vm.start()).wait();
      await (await vm.suspend({ toDisk: true })).wait();
      assert.equal((await vm.status.current()).status, 'stopped');
      await (await vm.start()).wait();
      assert.equal((await vm.status.current()).status, 'running');
    });

    test('snapshots: create with vmstate and description, list, rollback, delete', async () => {
      await ready;
      const vm = pve.qemu('pve1', 100);
      await (await vm.snapshots.create('before', { description: 'pre-upgrade', vmstate: true })).wait();
      const list = await vm.snapshots.list();
      const snap = list.find((x) => x.name === 'before');
      assert.equal(snap?.description, 'pre-upgrade');
      assert.equal(snap?.vmstate, true);
      assert.ok(!list.some((x) => x.name === 'current'));
      await (await vm.snapshots.rollback('before')).wait();
      await (await vm.snapshots.delete('before')).wait();
      assert.equal((await vm.snapshots.list()).length, 0);
      const ct = pve.lxc('pve2', 200);
      await (await ct.snapshots.create('c1', { description: 'ct snap' })).wait();
      assert.equal((await ct.snapshots.list())[0]?.name, 'c1');
      await (await ct.snapshots.delete('c1')).wait();
    });

    test('guest agent: ping, interfaces, filesystems, exec with input, file read/write, execute', async () => {
      await ready;
      const agent = pve.qemu('pve1', 100).agent;
      await agent.ping();
      assert.equal(await agent.isRunning(), true);
      assert.equal(await pve.qemu('pve1', 101).agent.isRunning(), false, 'stopped VM: agent not running');
      assert.ok((await agent.networkInterfaces()).some((i) => i.name !== 'lo'));
      assert.ok((await agent.filesystems()).length > 0);
      // exec sends the argument vector and input-data; exec-status returns what the simulated
      // guest's `cat` read from its stdin.
      const { pid } = await agent.exec(['cat'], { input: 'hello' });
      assert.ok(pid > 0);
      const status = await agent.execStatus(pid);
      assert.equal(status.exited, true);
      assert.equal(status.exitcode, 0);
      assert.equal(status['out-data'], 'hello');
      await agent.fileWrite('/tmp/note.txt', 'written by vmplane');
      assert.equal((await agent.fileRead('/tmp/note.txt')).content, 'written by vmplane');
      await agent.fileWrite('/tmp/bin.dat', new Uint8Array([0x68, 0x69]));
      assert.equal((await agent.fileRead('/tmp/bin.dat')).content, 'hi', 'binary content sent base64');
      const r = await agent.execute(['echo', 'hi'], { timeout: 10_000 });
      assert.deepEqual(r, { exitCode: 0, stdout: 'hi\n', stderr: '', truncated: false });
      const cat = await agent.execute(['cat', '/tmp/note.txt'], { timeout: 10_000 });
      assert.equal(cat.stdout, 'written by vmplane');
      const failed = await agent.execute(['sh', '-c', 'echo oops >&2; exit 3'], { timeout: 10_000 });
      assert.equal(failed.exitCode, 3);
      assert.equal(failed.stdout, '');
      assert.equal(failed.stderr, 'oops\n');
      const piped = await agent.execute('cat', { input: 'from stdin', timeout: 10_000 });
      assert.equal(piped.stdout, 'from stdin');
      // A command that runs longer than the simulated clock allows is polled until it exits.
      const slow = await agent.execute(['sh', '-c', 'sleep 0.05; echo done'], { timeout: 10_000, interval: 10 });
      assert.equal(slow.stdout, 'done\n');
      await assert.rejects(agent.exec([]), InvalidArgumentError);
    });

    test('VNC: proxy with ticket, websocket, noVNC URLs for guests and node shells; termproxy', async () => {
      await ready;
      const vm = pve.qemu('pve1', 100);
      const proxy = await vm.vncProxy();
      assert.ok(proxy.port > 0 && proxy.ticket);
      // The one-time ticket opens the websocket, and the VNC server speaks first: the RFB banner.
      const conn = await vm.vncWebSocket(proxy, { timeout: 10_000 });
      for await (const frame of conn.messages()) {
        assert.equal(frame.toString('latin1'), 'RFB 003.008\n');
        break; // leaving the loop closes the socket
      }
      assert.notEqual(conn.socket.readyState, conn.socket.OPEN);
      await assert.rejects(vm.vncWebSocket(proxy, { timeout: 10_000 }), (e: unknown) => {
        assert.ok(e instanceof UnauthorizedError, String(e));
        assert.doesNotMatch(e.message, new RegExp(escapeRe(proxy.ticket)), 'the ticket stays out of the error');
        return true;
      });
      // Without a proxy, vncWebSocket asks for a fresh one.
      const fresh = await vm.vncWebSocket(undefined, { timeout: 10_000 });
      const banner = await fresh.messages().next();
      assert.equal(banner.value?.toString('latin1'), 'RFB 003.008\n');
      fresh.close();
      // A node shell through vncshell opens the same way.
      const shell0 = await pve.node('pve1').shellWebSocket(undefined, { timeout: 10_000 });
      assert.equal((await shell0.messages().next()).value?.toString('latin1'), 'RFB 003.008\n');
      shell0.close();
      const url = new URL(vm.consoleUrl({ name: 'web', vncticket: proxy.ticket }));
      assert.equal(url.searchParams.get('console'), 'kvm');
      assert.equal(url.searchParams.get('novnc'), '1');
      assert.equal(url.searchParams.get('vmid'), '100');
      assert.equal(url.searchParams.get('vncticket'), proxy.ticket);
      assert.equal(url.origin, new URL(s.url).origin);
      const shell = new URL(pve.node('pve1').consoleUrl({ xterm: true }));
      assert.equal(shell.searchParams.get('console'), 'shell');
      assert.equal(shell.searchParams.get('xtermjs'), '1');
      assert.ok((await pve.node('pve1').termProxy()).ticket);
      assert.ok((await pve.node('pve1').vncShell()).ticket);
      assert.ok((await pve.lxc('pve2', 200).vncProxy()).ticket);
      assert.ok((await vm.termProxy({ serial: 'serial0' })).port > 0);
    });

    test('cloud-init: ciuser, sshkeys with PVE encoding round-trip, ipconfig, nameserver', async () => {
      await ready;
      const vm = pve.qemu('pve1', 101);
      const keys = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI+/x alice@laptop', 'ssh-rsa AAAAB3Nza bob@host'];
      await (
        await vm.setCloudInit({
          ciuser: 'debian',
          cipassword: 'pw',
          sshKeys: keys,
          ipconfig: [{ ip: '10.0.0.50/24', gw: '10.0.0.1' }],
          nameserver: '1.1.1.1',
        })
      ).wait();
      const c = await vm.config();
      assert.deepEqual(decodeSshKeys(String(c.raw.sshkeys)), keys);
      assert.equal(c.networks[0]?.ip, '10.0.0.50/24');
      assert.equal(c.raw.ciuser, 'debian');
    });

    // `STORAGE:cloudinit` asks PVE to allocate the cloud-init drive.
    test('a VM from a cloud image with import-from and a cloud-init drive', async () => {
      await ready;
      const vmid = await pve.cluster.nextId();
      const task = await pve.node('pve1').qemu.createFromCloudImage({
        vmid,
        name: 'from-image',
        image: 'local:import/debian-12-genericcloud-amd64.qcow2',
        storage: 'local',
        memoryMiB: 1024,
        cloudInit: { ciuser: 'debian', sshKeys: ['ssh-ed25519 AAAAC3Nza me@x'] },
      });
      await task.wait();
      const created = await pve.qemu('pve1', vmid).config();
      assert.equal(created.name, 'from-image');
      assert.ok(created.disks.some((d) => d.device === 'scsi0' && d.storage === 'local'));
      assert.ok(
        created.disks.some((d) => d.device === 'ide2'),
        'cloud-init drive',
      );
      assert.equal(created.raw.ciuser, 'debian');
      await (await pve.qemu('pve1', vmid).delete({ purge: true, destroyUnreferencedDisks: true })).wait();
    });

    test('clone, template, migrate with pre-checks, delete with purge', async () => {
      await ready;
      const { vmid, task } = await pve.qemu('pve1', 101).clone({ name: 'db-copy', full: true });
      await task.wait();
      const copy = pve.qemu('pve1', vmid);
      assert.equal((await copy.config()).name, 'db-copy');
      await assert.rejects(copy.migrate('pve1'), InvalidArgumentError);
      await assert.rejects(copy.migrate('nope'), InvalidArgumentError);
      s.faults.nodeOffline('pve3');
      await assert.rejects(copy.migrate('pve3'), /offline/);
      s.faults.nodeOnline('pve3');
      const migrations = () => s.requests.count('POST', '/nodes/{node}/qemu/{vmid}/migrate');
      const before = migrations();
      // A running VM with a local disk: PVE's precondition check says so before anything is sent.
      const live = await pve.qemu('pve1', 101).clone({ name: 'live', full: true, storage: 'local' });
      await live.task.wait();
      const liveVm = pve.qemu('pve1', live.vmid);
      await (await liveVm.start()).wait();
      const pre = await liveVm.migratePrecondition('pve2');
      assert.equal(pre.running, true);
      assert.ok(pre.local_disks.some((d) => d.volid.startsWith('local:')));
      await assert.rejects(
        liveVm.migrate('pve2'),
        (e: unknown) => e instanceof InvalidArgumentError && /online/.test(e.message),
      );
      await assert.rejects(
        liveVm.migrate('pve2', { online: true }),
        (e: unknown) => e instanceof InvalidArgumentError && /withLocalDisks/.test(e.message),
      );
      assert.equal(migrations(), before, 'refused migrations never reached PVE');
      await (
        await liveVm.migrate('pve2', { online: true, withLocalDisks: true, targetStorage: 'shared', bwlimit: 10_240 })
      ).wait();
      const liveMoved = await pve.qemu('pve2', live.vmid).status.current();
      assert.equal(liveMoved.status, 'running', 'a live migration keeps the VM running');
      const movedDisks = (await pve.qemu('pve2', live.vmid).config()).disks.filter((d) => !d.isCdrom);
      assert.ok(movedDisks.length > 0 && movedDisks.every((d) => d.storage === 'shared'), 'targetstorage was applied');
      await (await pve.qemu('pve2', live.vmid).stop()).wait();
      await (await pve.qemu('pve2', live.vmid).delete({ purge: true })).wait();
      // A running container moves only with restart.
      const ctMigrations = () => s.requests.count('POST', '/nodes/{node}/lxc/{vmid}/migrate');
      const ctBefore = ctMigrations();
      await assert.rejects(
        pve.lxc('pve2', 200).migrate('pve1'),
        (e: unknown) => e instanceof InvalidArgumentError && /restart/.test(e.message),
      );
      assert.equal(ctMigrations(), ctBefore);
      await (await copy.migrate('pve2', { withLocalDisks: true })).wait();
      const moved = pve.qemu('pve2', vmid);
      assert.equal((await moved.status.current()).vmid, vmid);
      await (await moved.template()).wait();
      assert.equal((await moved.config()).template, true);
      await (await moved.delete({ purge: true, destroyUnreferencedDisks: true, skiplock: true })).wait();
      await assert.rejects(moved.status.current());
      const ct = await pve.lxc('pve2', 200).clone({ name: 'ct-copy' });
      await ct.task.wait();
      await (await pve.lxc('pve2', ct.vmid).migrate('pve1', { restart: true })).wait();
      await pve.lxc('pve1', ct.vmid).template();
      await (await pve.lxc('pve1', ct.vmid).delete({ purge: true, force: true })).wait();
    });

    test('storage: upload a file and download-url into a storage', async () => {
      await ready;
      const dir = await mkdtemp(join(tmpdir(), 'pve-upload-'));
      try {
        const file = join(dir, 'tiny.iso');
        await writeFile(file, Buffer.alloc(4096, 7));
        let progress = 0;
        const up = await pve
          .node('pve1')
          .storage('local')
          .upload(file, {
            content: 'iso',
            onProgress: (sent) => {
              progress = sent;
            },
          });
        await up.wait();
        assert.equal(progress, 4096);
        const content = await pve.node('pve1').storage('local').content({ content: 'iso' });
        const uploaded = content.find((c) => c.volid === 'local:iso/tiny.iso');
        assert.equal(uploaded?.size, 4096);
        assert.equal(s.state.volumesOf('pve1', 'local').get('local:iso/tiny.iso')?.size, 4096);
        const dl = await pve.node('pve1').storage('local').downloadUrl('https://example.com/debian.qcow2', {
          content: 'import',
          filename: 'debian.qcow2',
        });
        await dl.wait();
        assert.ok(s.state.volumesOf('pve1', 'local').has('local:import/debian.qcow2'));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('fast cluster view: first view at once, enriched in the background, objects never mutated', async () => {
      await ready;
      const view = await pve.cluster.view({ concurrency: 3, fresh: true });
      const first = view.initial;
      const firstGuests = first.guests.map((g) => ({ ...g }));
      assert.ok(first.guests.every((g) => !g.enriched));
      const seen: number[] = [];
      for await (const v of view.updates()) seen.push(v.guests.filter((g) => g.enriched).length);
      const done = await view.enriched;
      assert.equal(view.done, true);
      assert.ok(done.guests.length > 0 && done.guests.every((g) => g.enriched || g.enrichError));
      assert.ok(done.guests.find((g) => g.vmid === 100)?.ip);
      assert.ok(done.nodes.every((n) => !n.online || n.details));
      assert.deepEqual(
        first.guests.map((g) => ({ ...g })),
        firstGuests,
        'the first view is untouched',
      );
      assert.ok(seen.length >= 1);
    });
  });
}

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
