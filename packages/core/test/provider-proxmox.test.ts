import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ProxmoxClient } from '@vmplane/proxmox';
import type { StageContext } from '../src/engine/stage.js';
import { AlreadyExistsError, ReadinessTimeoutError } from '../src/errors.js';
import { ImageCatalogue } from '../src/images/catalogue.js';
import type { ProxmoxRef } from '../src/model/instance.js';
import type {
  InstallPlan,
  InstallSpec,
  InstallStageName,
  InstallState,
  StageOutcome,
} from '../src/providers/provider.js';
import {
  createProxmoxProvider,
  type ProxmoxProvider,
  type ProxmoxProviderOptions,
} from '../src/providers/proxmox/index.js';
import { loadSshKey } from '../src/ssh/keys.js';
import { runSsh } from '../src/ssh/run.js';
import { GATEWAY, mirrorFiles, type SimWorld, startImageServer, startSim } from './support/sim.js';
import { STAGES } from './support/stages.js';

/** A stand-in for core's engine: runs stages in order, keeps their log lines and undo intents. */
export class Run {
  readonly logs: { stage: string; line: string }[] = [];
  readonly undos: { kind: string; payload: Record<string, unknown>; discarded: boolean }[] = [];
  readonly outcomes: [InstallStageName, StageOutcome][] = [];
  readonly controller = new AbortController();
  #stage = '';
  constructor(readonly operationId: string) {}

  get ctx(): StageContext {
    return {
      operationId: this.operationId,
      signal: this.controller.signal,
      log: async (line) => {
        this.logs.push({ stage: this.#stage, line });
      },
      registerUndo: async (kind, payload) => {
        const u = { kind, payload, discarded: false };
        this.undos.push(u);
        return {
          discard: async () => {
            u.discarded = true;
          },
          update: async (p) => {
            u.payload = p;
          },
        };
      },
    };
  }

  async stages(plan: InstallPlan, state: InstallState, names: readonly InstallStageName[]): Promise<void> {
    for (const name of names) {
      this.#stage = name;
      this.outcomes.push([name, await plan[name](this.ctx, state)]);
    }
  }

  /** The engine's undo: every intent not discarded, newest first. */
  async undo(provider: ProxmoxProvider): Promise<string[]> {
    const ran: string[] = [];
    for (const u of [...this.undos].reverse()) {
      if (u.discarded) continue;
      const handler = provider.undo[u.kind];
      assert.ok(handler, `no undo handler ${u.kind}`);
      await handler(u.payload, { timeout: 30_000 });
      ran.push(u.kind);
    }
    return ran;
  }
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface World extends SimWorld {
  provider: ProxmoxProvider;
  client: ProxmoxClient;
  keyDir: string;
  catalogue: ImageCatalogue;
  mirror: Awaited<ReturnType<typeof startImageServer>>;
}

async function world(extra: Partial<ProxmoxProviderOptions> = {}, simOptions = {}): Promise<World> {
  const w = await startSim(simOptions);
  const mirror = await startImageServer();
  const catalogue = new ImageCatalogue({
    mirrors: { debian: `${mirror.url}/debian`, ubuntu: `${mirror.url}/ubuntu`, rocky: `${mirror.url}/rocky` },
  });
  for (const [p, b] of Object.entries(mirrorFiles(catalogue, ['debian-12', 'ubuntu-24.04', 'rocky-9'])))
    mirror.set(p, b);
  const keyDir = join(await mkdtemp(join(tmpdir(), 'vmpt-pve-')), 'ssh');
  dirs.push(join(keyDir, '..'));
  const client = new ProxmoxClient({
    baseUrl: w.sim.url,
    tokenId: w.sim.credentials.tokenId,
    tokenSecret: w.sim.credentials.tokenSecret,
    retry: { initial: 5, max: 20 },
  });
  after(() => client.close());
  const provider = createProxmoxProvider({
    name: 'lab',
    client,
    storage: 'local',
    imageStorage: 'local',
    catalogue,
    sshKeyDir: keyDir,
    sshPort: w.sshPort,
    bootTimeoutMs: 20_000,
    network: { gateway: GATEWAY },
    ...extra,
  });
  return { ...w, provider, client, keyDir, catalogue, mirror };
}

function spec(over: Partial<InstallSpec> = {}): InstallSpec {
  return { name: 'web-1', image: 'ubuntu-24.04', kind: 'vm', vcpus: 2, memoryMiB: 2048, diskGiB: 8, ...over };
}

describe('Proxmox install', () => {
  it('runs every stage in order on the simulator and leaves a VM vmplane can log in to', async () => {
    const w = await world();
    const secret = 'Very-s3cret pass';
    const userKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeUserKeyForTheTestOnly0000000000000000 me@laptop';
    const s = spec({ password: secret, sshPublicKey: userKey });
    const state: InstallState = { vmid: 151, ipv4: '127.77.0.151' };
    const run = new Run('op-1');
    await run.stages(w.provider.install(s), state, STAGES);

    assert.deepEqual(
      run.outcomes.map(([n]) => n),
      STAGES,
    );
    const outcome = Object.fromEntries(run.outcomes);
    assert.equal(outcome['SSH preparation > checking SSH key']?.renamedTo, 'SSH preparation > creating SSH key');
    assert.equal(outcome['OS preparation > downloading OS image']?.renamedTo, undefined);
    assert.equal(outcome['VM initialization > migrating VM']?.skipped, true);
    assert.deepEqual(state.ref, { type: 'proxmox', node: 'pve1', vmid: 151, kind: 'qemu' });
    assert.equal(state.imageVolume, 'local:import/ubuntu-24.04-server-cloudimg-amd64.qcow2');
    assert.match(outcome['VM initialization > finalizing']?.message ?? '', /151 is ready at 127\.77\.0\.151/);

    // The VM as PVE has it.
    const vm = w.client.qemu('pve1', 151);
    const config = await vm.config({ fresh: true });
    assert.equal(config.cores, 2);
    assert.equal(config.memoryMiB, 2048);
    assert.equal(config.raw.ciuser, 'ubuntu');
    assert.equal(config.raw.ipconfig0, `ip=127.77.0.151/24,gw=${GATEWAY}`);
    assert.ok(config.agentEnabled);
    assert.deepEqual([...config.tags].sort(), ['ubuntu', 'vmplane']);
    assert.equal(config.disks.find((d) => d.device === 'scsi0')?.sizeBytes, 8 * 1024 ** 3);
    assert.equal(config.raw.cipassword, undefined, 'the password never goes to PVE');
    const dump = await w.client.transport.get<string>('/nodes/pve1/qemu/151/cloudinit/dump', {
      params: { type: 'user' },
    });
    assert.match(dump, /^user: ubuntu$/m);
    assert.ok(dump.includes('me@laptop'));
    assert.equal((await vm.status.current()).status, 'running');

    // The init ran over SSH as the cloud-init user, the password on stdin only.
    const commands = w.guestCommands.filter((c) => c.vmid === 151);
    assert.ok(commands.some((c) => c.command.endsWith('apt-get -q -y install qemu-guest-agent')));
    assert.ok(commands.some((c) => c.command === 'sudo -n hostnamectl set-hostname web-1'));
    assert.ok(commands.every((c) => c.user === 'ubuntu'));
    const lines = run.logs.map((l) => l.line).join('\n');
    assert.ok(!lines.includes(secret));
    assert.ok(lines.includes('$ sudo -n chpasswd'));
    // chpasswd (the simulator's own) set it: the user logs in with it.
    const key = await loadSshKey(w.keyDir);
    assert.ok(key);
    const at = { host: '127.77.0.151', port: w.sshPort, username: 'ubuntu' };
    assert.equal((await runSsh({ ...at, password: secret }, 'true', { timeout: 10_000 })).exitCode, 0);
    assert.equal((await runSsh({ ...at, key }, 'true', { timeout: 10_000 })).exitCode, 0);
    // The reboot happened: waiting for ready came twice.
    assert.ok(run.logs.some((l) => l.stage === 'VM initialization > rebooting VM' && /^ready/.test(l.line)));

    // list() and get() see it; used() holds its VMID and address.
    const listed = (await w.provider.list()).find((g) => g.ref.type === 'proxmox' && g.ref.vmid === 151);
    assert.equal(listed?.state, 'Running');
    assert.deepEqual(listed?.tags, { ubuntu: '', vmplane: '' });
    const got = await w.provider.get(state.ref);
    assert.equal(got?.ipv4, '127.77.0.151');
    const used = await w.provider.used();
    assert.ok(used.vmids.has(151) && used.ipv4.has('127.77.0.151'));

    // Undo removes the VM and the image this install downloaded.
    assert.deepEqual(await run.undo(w.provider), ['proxmox.destroy-vm', 'proxmox.delete-volume']);
    assert.equal(await w.provider.get(state.ref), undefined);
    const images = await w.client.node('pve1').storage('local').content({ content: 'import' });
    assert.ok(!images.some((i) => i.volid === state.imageVolume));
    // Undoing again is fine: what is gone counts as undone.
    assert.deepEqual(await run.undo(w.provider), ['proxmox.destroy-vm', 'proxmox.delete-volume']);
    assert.deepEqual(w.sim.violations, []);
  });

  it('uses an image already on the storage, and keeps it on undo', async () => {
    const w = await world();
    // The simulator's nodes have local:import/debian-12-genericcloud-amd64.qcow2 from the start.
    const state: InstallState = { vmid: 152, ipv4: '127.77.0.152' };
    const run = new Run('op-2');
    await run.stages(w.provider.install(spec({ image: 'debian-12', name: 'db' })), state, STAGES.slice(0, 11));
    const outcome = Object.fromEntries(run.outcomes);
    assert.equal(outcome['OS preparation > downloading OS image']?.renamedTo, 'OS preparation > using OS image');
    assert.equal(w.sim.requests.count('POST', '/nodes/{node}/storage/{storage}/download-url'), 0);
    assert.deepEqual(await run.undo(w.provider), ['proxmox.destroy-vm']);
    const images = await w.client.node('pve1').storage('local').content({ content: 'import' });
    assert.ok(images.some((i) => i.volid === 'local:import/debian-12-genericcloud-amd64.qcow2'));
  });

  it('shares one download between two concurrent installs of an image', async () => {
    const w = await world({}, { taskDuration: 150 });
    const a = new Run('op-a');
    const b = new Run('op-b');
    const sa: InstallState = { vmid: 153, ipv4: '127.77.0.153' };
    const sb: InstallState = { vmid: 154, ipv4: '127.77.0.154' };
    const upTo = STAGES.slice(0, 9);
    await Promise.all([
      a.stages(w.provider.install(spec({ image: 'rocky-9', name: 'a' })), sa, upTo),
      b.stages(w.provider.install(spec({ image: 'rocky-9', name: 'b' })), sb, upTo),
    ]);
    assert.equal(w.sim.requests.count('POST', '/nodes/{node}/storage/{storage}/download-url'), 1);
    assert.equal(sa.imageVolume, 'local:import/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2');
    assert.equal(sb.imageVolume, sa.imageVolume);
    const downloaders = [a, b].filter((r) => r.undos.some((u) => u.kind === 'proxmox.delete-volume'));
    assert.equal(downloaders.length, 1, 'only the install that downloaded may delete the file');
    const [creator] = downloaders;
    const other = creator === a ? b : a;
    const has = async () =>
      (await w.client.node('pve1').storage('local').content({ content: 'import' })).some(
        (i) => i.volid === sa.imageVolume,
      );
    // The other install still needs the file: the creator's undo leaves it.
    await creator?.undo(w.provider);
    assert.equal(await has(), true);
    await other.undo(w.provider);
    assert.equal(await has(), true, 'the joiner never deletes what it did not download');
  });

  it('refuses a VMID the cluster has, and a download whose checksum does not match', async () => {
    const w = await world();
    const vm = await w.client.node('pve1').qemu.create({ vmid: 155, name: 'taken' });
    await vm.wait();
    await assert.rejects(
      new Run('op-3').stages(w.provider.install(spec()), { vmid: 155, ipv4: '127.77.0.155' }, STAGES.slice(0, 1)),
      AlreadyExistsError,
    );
    // The mirror's checksum file no longer matches the image it serves.
    const image = w.catalogue.get('ubuntu-24.04');
    w.mirror.set(new URL(image.checksumUrl).pathname, `${'0'.repeat(64)}  ${image.file}\n`);
    const run = new Run('op-4');
    await assert.rejects(
      run.stages(w.provider.install(spec()), { vmid: 156, ipv4: '127.77.0.156' }, STAGES.slice(0, 9)),
      /checksum mismatch/,
    );
    await run.undo(w.provider);
    const images = await w.client.node('pve1').storage('local').content({ content: 'import' });
    assert.ok(!images.some((i) => i.volid.includes('ubuntu-24.04')));
  });

  it('fails waiting for ready with ReadinessTimeoutError when the guest sends no SSH banner', async () => {
    const w = await world({ bootTimeoutMs: 1_500 });
    const state: InstallState = { vmid: 157, ipv4: '127.77.0.157' };
    const run = new Run('op-5');
    const plan = w.provider.install(spec({ image: 'debian-12' }));
    await run.stages(plan, state, STAGES.slice(0, 14));
    w.sim.faults.guest(157, { ssh: 'silent' });
    await assert.rejects(run.stages(plan, state, STAGES.slice(14, 15)), ReadinessTimeoutError);
    await run.undo(w.provider);
    assert.equal(await w.provider.get(state.ref as ProxmoxRef), undefined);
  });

  it('migrates to the target node after creation', async () => {
    const w = await world();
    const state: InstallState = { vmid: 158, ipv4: '127.77.0.158' };
    const run = new Run('op-6');
    await run.stages(w.provider.install(spec({ image: 'debian-12', targetNode: 'pve2' })), state, STAGES.slice(0, 14));
    assert.deepEqual(state.ref, { type: 'proxmox', node: 'pve2', vmid: 158, kind: 'qemu' });
    assert.equal(run.undos.find((u) => u.kind === 'proxmox.destroy-vm')?.payload.node, 'pve2');
    await run.undo(w.provider);
    assert.equal(
      (await w.provider.list()).some((g) => g.ref.type === 'proxmox' && g.ref.vmid === 158),
      false,
    );
  });
});
