import { ApiError, type CallOptions, path } from '@vmplane/common';
import { encodeSshKeys, type NodeStatus, type Storage } from '@vmplane/proxmox';
import type { StageContext, UndoHandle } from '../../engine/stage.js';
import { AlreadyExistsError, InvalidRequestError } from '../../errors.js';
import type { CatalogueImage } from '../../images/catalogue.js';
import type { ChecksumEntry } from '../../images/checksums.js';
import { checkImageUrl, fetchChecksum } from '../../images/fetch.js';
import type { ProxmoxRef } from '../../model/instance.js';
import type { SshTarget } from '../../ssh/connect.js';
import { connectSsh } from '../../ssh/connect.js';
import { initGuest, isValidUserName, sshShell } from '../../ssh/init.js';
import { createSshKey, loadSshKey, type SshKeyPair } from '../../ssh/keys.js';
import type { InstallPlan, InstallSpec, InstallState, StageOutcome } from '../provider.js';
import { agentShell } from './guest-access.js';
import { type ProxmoxGuests, TIMEOUTS } from './guests.js';
import { downloadImage } from './image-download.js';
import { isIpv4 } from './options.js';
import { UNDO } from './undo.js';
import { call, GiB, guestName, MiB, runTask } from './util.js';

/**
 * A VM's install, stage by stage in go-pve-qemu's order (provider.ts's InstallStageName). Core
 * reserves the VMID and the address before the first stage and hands them in InstallState; the
 * stages check them against the cluster, prepare the image and the key, make the VM from the
 * cloud image with cloud-init, start it, initialise its OS over SSH, reboot it and report it.
 * What a stage learns for later stages stays in this closure; what is journal-safe goes into
 * InstallState too.
 */

/** What an install has learnt so far. */
export interface InstallFacts {
  node?: string;
  user?: string;
  name?: string;
  image?: CatalogueImage;
  checksum?: ChecksumEntry;
  key?: SshKeyPair;
  hostKey?: string;
  destroyUndo?: UndoHandle;
  imageKey?: string;
  releaseUndo?: UndoHandle;
}

export type Log = (line: string) => Promise<void>;

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new InvalidRequestError({ message: `the install has no ${what} yet` });
  return value;
}

const short = (hex: string) => `${hex.slice(0, 16)}…`;

/** The node guests are made on: the configured main node, else the first online one by name. */
export async function creationNode(g: ProxmoxGuests, opts: CallOptions): Promise<string> {
  const status = await g.pve.cluster.status({ ...call(opts, TIMEOUTS.read), fresh: true });
  const online = status.nodes.filter((n) => n.online).map((n) => n.name);
  if (g.o.mainNode !== undefined) {
    if (!status.nodes.some((n) => n.name === g.o.mainNode)) {
      throw new InvalidRequestError({ message: `main node ${g.o.mainNode} is not in the cluster`, field: 'mainNode' });
    }
    if (!online.includes(g.o.mainNode)) {
      throw new InvalidRequestError({ message: `main node ${g.o.mainNode} is offline`, field: 'mainNode' });
    }
    return g.o.mainNode;
  }
  const first = online.sort()[0];
  if (!first) throw new InvalidRequestError({ message: 'no node of the cluster is online' });
  return first;
}

/** Stages both plans (VM and container) run the same way. */
export function commonStages(g: ProxmoxGuests, spec: InstallSpec, facts: InstallFacts) {
  const stage = (ctx: StageContext) => ({ signal: ctx.signal, timeout: TIMEOUTS.read });
  return {
    async checkVmid(ctx: StageContext, state: InstallState): Promise<StageOutcome> {
      const vmid = need(state.vmid, 'VMID (core reserves one before this stage)');
      const taken = (await g.resources(stage(ctx))).find((r) => r.vmid === vmid);
      if (taken) {
        throw new AlreadyExistsError({
          message: `VMID ${vmid} is taken on the cluster by ${taken.type} ${taken.name ?? ''} on ${taken.node}`,
        });
      }
      try {
        // PVE's own check also sees configs that are not listed yet (a create in flight elsewhere).
        await g.pve.cluster.nextId({ ...stage(ctx), vmid });
      } catch (error) {
        if (error instanceof ApiError && error.status === 400) {
          throw new AlreadyExistsError({ message: `VMID ${vmid} is taken on the cluster: ${error.message}` });
        }
        throw error;
      }
      await ctx.log(`VMID ${vmid} is free on the cluster`);
      return {};
    },

    async assignIp(ctx: StageContext, state: InstallState): Promise<StageOutcome> {
      const ip = need(state.ipv4, 'IPv4 address (core allocates one before this stage)');
      if (!isIpv4(ip))
        throw new InvalidRequestError({ message: `${JSON.stringify(ip)} is not an IPv4 address`, field: 'ip' });
      await ctx.log(`ip=${ip}/${g.o.prefixLength}, gateway ${g.o.gateway}`);
      return {};
    },

    async validateCpuRam(ctx: StageContext): Promise<StageOutcome> {
      const node = await creationNode(g, stage(ctx));
      facts.node = node;
      const runs = spec.targetNode ?? node;
      if (spec.targetNode !== undefined) {
        const status = await g.pve.cluster.status({ ...stage(ctx), fresh: true });
        const target = status.nodes.find((n) => n.name === spec.targetNode);
        if (!target)
          throw new InvalidRequestError({ message: `node ${spec.targetNode} is not in the cluster`, field: 'node' });
        if (!target.online)
          throw new InvalidRequestError({ message: `node ${spec.targetNode} is offline`, field: 'node' });
      }
      const status: NodeStatus = await g.pve.node(runs).status({ ...stage(ctx), fresh: true });
      const cpus = status.cpuinfo.cpus;
      const memory = status.memory.total;
      await ctx.log(
        `node ${runs}: ${cpus} CPUs, ${Math.floor(memory / MiB)} MiB; asked for ${spec.vcpus} vCPUs, ${spec.memoryMiB} MiB`,
      );
      if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) {
        throw new InvalidRequestError({ message: 'vcpus must be a whole number from 1', field: 'cpu' });
      }
      if (spec.vcpus > cpus) {
        throw new InvalidRequestError({
          message: `node ${runs} has ${cpus} CPUs, fewer than the ${spec.vcpus} asked for`,
          field: 'cpu',
        });
      }
      if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 16) {
        throw new InvalidRequestError({ message: 'memory must be a whole number of MiB from 16', field: 'ram' });
      }
      if (spec.memoryMiB * MiB > memory) {
        throw new InvalidRequestError({
          message: `node ${runs} has ${Math.floor(memory / MiB)} MiB, less than the ${spec.memoryMiB} MiB asked for`,
          field: 'ram',
        });
      }
      return {};
    },

    async validateDisk(ctx: StageContext): Promise<StageOutcome> {
      if (!Number.isInteger(spec.diskGiB) || spec.diskGiB < 1) {
        throw new InvalidRequestError({ message: 'disk must be a whole number of GiB from 1', field: 'disk' });
      }
      if (g.o.maxDiskGiB !== undefined && spec.diskGiB > g.o.maxDiskGiB) {
        throw new InvalidRequestError({
          message: `disk is larger than the ${g.o.maxDiskGiB} GiB allowed`,
          field: 'disk',
        });
      }
      await ctx.log(`disk: ${spec.diskGiB} GiB`);
      return {};
    },

    async checkKey(ctx: StageContext): Promise<StageOutcome> {
      const found = await loadSshKey(g.o.sshKeyDir);
      if (found) {
        facts.key = found;
        await ctx.log(`vmplane's key ${found.fingerprint} (${found.path})`);
        return {};
      }
      await ctx.log(`no SSH key in ${g.o.sshKeyDir}: making one`);
      const made = await createSshKey(g.o.sshKeyDir);
      facts.key = made.key;
      await ctx.log(`vmplane's key ${made.key.fingerprint} (${made.key.path})`);
      return { renamedTo: 'SSH preparation > creating SSH key' };
    },

    /** Storage `id` on `node`: there, active, and holding `content`. */
    async checkStorage(ctx: StageContext, node: string, id: string, content: string): Promise<Storage> {
      const list = await g.pve.node(node).storages({ ...stage(ctx), fresh: true });
      const s = list.find((x) => x.storage === id);
      if (!s)
        throw new InvalidRequestError({ message: `storage ${id} does not exist on node ${node}`, field: 'storage' });
      if (s.active === false || s.enabled === false) {
        throw new InvalidRequestError({ message: `storage ${id} is not active on node ${node}`, field: 'storage' });
      }
      if (!s.content.split(',').includes(content)) {
        throw new InvalidRequestError({
          message: `storage ${id} does not hold ${content} content (it has ${s.content})`,
          field: 'storage',
        });
      }
      const avail = s.avail === undefined ? '' : `, ${(s.avail / GiB).toFixed(1)} GiB free`;
      await ctx.log(`storage ${id} on ${node}: ${s.type}, ${content}${avail}`);
      return s;
    },

    async finalize(ctx: StageContext, state: InstallState): Promise<StageOutcome> {
      const vmid = need(state.vmid, 'VMID');
      await ctx.log(`VMID: ${vmid}`);
      if (state.ipv4) await ctx.log(`IP: ${state.ipv4}`);
      if (facts.user) await ctx.log(`User: ${facts.user}`);
      return {
        message: `${spec.kind === 'vm' ? 'VM' : 'container'} ${vmid} is ready${state.ipv4 ? ` at ${state.ipv4}` : ''}`,
      };
    },
  };
}

/** The VM plan. */
export function vmInstallPlan(g: ProxmoxGuests, spec: InstallSpec): InstallPlan {
  const facts: InstallFacts = {};
  const common = commonStages(g, spec, facts);
  const readiness = spec.readiness === 'agent' ? 'agent' : spec.readiness === 'ssh' ? 'ssh' : g.o.readiness;
  const refOf = (state: InstallState): ProxmoxRef => need(state.ref, 'VM') as ProxmoxRef;
  const target = (state: InstallState): SshTarget => ({
    host: need(state.ipv4, 'address'),
    port: g.o.sshPort,
    username: need(facts.user, 'user'),
    key: need(facts.key, 'SSH key'),
    ...(facts.hostKey ? { hostKey: facts.hostKey } : {}),
  });
  const ready = async (ctx: StageContext, state: InstallState) => {
    const r = await g.waitReady(refOf(state), {
      signal: ctx.signal,
      timeout: g.o.bootTimeoutMs,
      readiness,
      log: (l) => ctx.log(l),
      target: target(state),
    });
    if (r.hostKey) {
      facts.hostKey ??= r.hostKey;
      await ctx.log(`ready (host key ${r.hostKey})`);
    } else await ctx.log('ready (guest agent answers)');
  };

  return {
    'preparation > checking VMID': common.checkVmid,
    'preparation > assigning IP': common.assignIp,
    'preparation > validating CPU and RAM': common.validateCpuRam,
    'preparation > validating disk size': common.validateDisk,

    async 'preparation > setting default config values'(ctx, state) {
      const image = g.o.catalogue.get(spec.image);
      facts.image = image;
      facts.user = spec.user ?? image.defaultUser;
      if (!isValidUserName(facts.user) || facts.user === 'root') {
        throw new InvalidRequestError({
          message: `${JSON.stringify(facts.user)} cannot be the VM's user`,
          field: 'user',
        });
      }
      facts.name = guestName(spec.name);
      state.node = need(facts.node, 'node');
      state.storage = g.o.storage;
      await ctx.log(
        `name ${facts.name}, user ${facts.user}, node ${state.node}, storage ${g.o.storage}, bridge ${g.o.bridge}`,
      );
      await ctx.log(
        `readiness by ${readiness}${readiness === 'ssh' ? ` on port ${g.o.sshPort}` : ''}, boot timeout ${g.o.bootTimeoutMs} ms`,
      );
      return {};
    },

    async 'preparation > checking storage pool'(ctx) {
      const node = need(facts.node, 'node');
      await common.checkStorage(ctx, node, g.o.storage, 'images');
      await common.checkStorage(ctx, node, g.o.imageStorage, 'import');
      // A migration with local disks puts them on the same storage id on the target.
      if (spec.targetNode !== undefined && spec.targetNode !== node) {
        await common.checkStorage(ctx, spec.targetNode, g.o.storage, 'images');
      }
      return {};
    },

    async 'OS preparation > getting OS image'(ctx, state) {
      const image = need(facts.image, 'image');
      state.imageUrl = image.url;
      await ctx.log(`${image.name}: ${image.url}`);
      return { message: `OS image URL obtained: ${image.url}` };
    },

    async 'OS preparation > validating OS image URL'(ctx) {
      const image = need(facts.image, 'image');
      const head = await checkImageUrl(image.url, { signal: ctx.signal, timeout: 30_000 });
      await ctx.log(`${image.url} answers${head.size ? ` (${head.size} bytes)` : ''}`);
      facts.checksum = await fetchChecksum(image, { signal: ctx.signal, timeout: 30_000 });
      await ctx.log(`${facts.checksum.algorithm} ${short(facts.checksum.hex)} from ${image.checksumUrl}`);
      return {};
    },

    async 'OS preparation > downloading OS image'(ctx, state) {
      const r = await downloadImage(g, ctx, {
        node: need(facts.node, 'node'),
        image: need(facts.image, 'image'),
        checksum: need(facts.checksum, 'checksum'),
      });
      facts.imageKey = r.key;
      facts.releaseUndo = r.releaseUndo;
      state.imageVolume = r.volid;
      if (!r.downloaded && !r.joined)
        return { renamedTo: 'OS preparation > using OS image', message: `using ${r.volid}` };
      return { message: r.joined ? `${r.volid} (downloaded once for concurrent installs)` : `downloaded ${r.volid}` };
    },

    'SSH preparation > checking SSH key': common.checkKey,

    async 'VM creation > creating VM'(ctx, state) {
      const node = need(facts.node, 'node');
      const vmid = need(state.vmid, 'VMID');
      const ip = need(state.ipv4, 'address');
      const key = need(facts.key, 'SSH key');
      const image = need(facts.image, 'image');
      // The undo first: a crash between the POST and the next event must still remove the VM.
      facts.destroyUndo = await ctx.registerUndo(UNDO.destroyVm, { node, vmid, kind: 'qemu' });
      const keys = [key.publicKey, ...(spec.sshPublicKey ? [spec.sshPublicKey.trim()] : [])];
      const config: Record<string, string | number | boolean> = {
        ostype: 'l26',
        tags: ['vmplane', image.os].join(';'),
        // An upgrade of every package on first boot makes installs slow and unpredictable.
        ciupgrade: false,
      };
      const balloon = g.o.balloonMinMiB;
      if (balloon !== undefined && spec.memoryMiB > balloon) config.balloon = balloon;
      await ctx.log(
        `qm create ${vmid} on ${node}: ${spec.vcpus} cores, ${spec.memoryMiB} MiB, scsi0 from ${state.imageVolume}`,
      );
      await runTask(
        { signal: ctx.signal, timeout: 30 * 60_000 },
        (o) =>
          g.pve.node(node).qemu.createFromCloudImage({
            ...o,
            vmid,
            name: need(facts.name, 'name'),
            image: need(state.imageVolume, 'image volume'),
            storage: g.o.storage,
            cores: spec.vcpus,
            memoryMiB: spec.memoryMiB,
            bridge: g.o.bridge,
            cloudInit: {
              ciuser: need(facts.user, 'user'),
              sshKeys: keys,
              ipconfig: [{ ip: `${ip}/${g.o.prefixLength}`, gw: g.o.gateway }],
              ...(g.o.nameserver ? { nameserver: g.o.nameserver } : {}),
            },
            config,
          }),
        (l) => ctx.log(l),
      );
      state.ref = { type: 'proxmox', node, vmid, kind: 'qemu' };
      // import-from copied the image into the VM's disk: this install no longer needs the file.
      if (facts.imageKey) g.o.downloads.release(facts.imageKey, ctx.operationId);
      await facts.releaseUndo?.discard();
      return {};
    },

    async 'VM creation > importing disk image'(ctx, state) {
      const ref = refOf(state);
      const config = await g.pve
        .qemu(ref.node, ref.vmid)
        .config({ signal: ctx.signal, timeout: TIMEOUTS.read, fresh: true });
      const disk = config.disks.find((d) => d.device === 'scsi0');
      if (!disk || disk.options['import-from'] !== undefined) {
        throw new InvalidRequestError({ message: `VM ${ref.vmid} has no imported scsi0 disk` });
      }
      const size = disk.sizeBytes ?? 0;
      await ctx.log(`scsi0: ${disk.volume}, ${(size / GiB).toFixed(2)} GiB imported`);
      const want = spec.diskGiB * GiB;
      if (size >= want) {
        await ctx.log(`the image is ${(size / GiB).toFixed(2)} GiB already: PVE only grows disks, so it stays`);
        return {};
      }
      await runTask({ signal: ctx.signal, timeout: TIMEOUTS.action }, (o) =>
        g.pve.qemu(ref.node, ref.vmid).resize('scsi0', `${spec.diskGiB}G`, o),
      );
      await ctx.log(`scsi0 grown to ${spec.diskGiB} GiB`);
      return {};
    },

    async 'VM initialization > initializing configuration'(ctx, state) {
      const ref = refOf(state);
      const vm = g.pve.qemu(ref.node, ref.vmid);
      const config = await vm.config({ signal: ctx.signal, timeout: TIMEOUTS.read, fresh: true });
      const key = need(facts.key, 'SSH key');
      const problems: string[] = [];
      if (config.raw.ciuser !== facts.user) problems.push(`ciuser is ${String(config.raw.ciuser)}`);
      if (config.ipConfigs[0]?.ip !== `${state.ipv4}/${g.o.prefixLength}`) problems.push('ipconfig0 differs');
      if (!String(config.raw.sshkeys ?? '').includes(encodeSshKeys(key.publicKey.split(' ').slice(0, 2).join(' ')))) {
        problems.push("vmplane's key is not in sshkeys");
      }
      if (!config.agentEnabled) problems.push('the guest agent is off');
      if (problems.length > 0)
        throw new InvalidRequestError({ message: `VM ${ref.vmid}'s config: ${problems.join('; ')}` });
      // The drive is written at start anyway; regenerating now makes a broken config fail here.
      await vm.regenerateCloudInit({ signal: ctx.signal, timeout: TIMEOUTS.action });
      const dump = await g.pve.transport.get<string>(path`/nodes/${ref.node}/qemu/${ref.vmid}/cloudinit/dump`, {
        signal: ctx.signal,
        timeout: TIMEOUTS.read,
        params: { type: 'user' },
      });
      const users = [...String(dump).matchAll(/^\s*(?:user|name):\s*(\S+)/gm)].map((m) => m[1]);
      await ctx.log(
        `cloud-init: user ${users[0] ?? facts.user}, ${config.ipConfigs[0]?.ip ?? ''} via ${g.o.gateway}, ${
          String(dump)
            .split('\n')
            .filter((l) => /ssh-/.test(l)).length
        } SSH keys`,
      );
      return {};
    },

    async 'VM initialization > migrating VM'(ctx, state) {
      const ref = refOf(state);
      if (spec.targetNode === undefined || spec.targetNode === ref.node) return { skipped: true };
      const to = spec.targetNode;
      await ctx.log(`qm migrate ${ref.vmid} ${to} --with-local-disks (offline)`);
      await runTask(
        { signal: ctx.signal, timeout: 60 * 60_000 },
        (o) => g.pve.qemu(ref.node, ref.vmid).migrate(to, { ...o, online: false, withLocalDisks: true }),
        (l) => ctx.log(l),
      );
      state.ref = { ...ref, node: to };
      state.node = to;
      await facts.destroyUndo?.update({ node: to, vmid: ref.vmid, kind: 'qemu' });
      return { message: `VM migrated to node ${to}` };
    },

    async 'VM initialization > waiting for ready'(ctx, state) {
      const ref = refOf(state);
      await runTask({ signal: ctx.signal, timeout: TIMEOUTS.action }, (o) => g.pve.qemu(ref.node, ref.vmid).start(o));
      await ctx.log(`VM ${ref.vmid} started on ${ref.node}`);
      await ready(ctx, state);
      return {};
    },

    async 'VM initialization > SSH initialization'(ctx, state) {
      const ref = refOf(state);
      const image = need(facts.image, 'image');
      const plan = {
        loginUser: need(facts.user, 'user'),
        ...(spec.password !== undefined ? { password: spec.password } : {}),
        ...(spec.sshPublicKey ? { authorizedKeys: [spec.sshPublicKey] } : {}),
        hostname: need(facts.name, 'name'),
        packageManager: image.packageManager,
        extraCommands: g.o.initCommands,
      };
      const opts = { signal: ctx.signal, timeout: 30 * 60_000, log: (l: string) => ctx.log(l) };
      if (readiness === 'agent') {
        await initGuest(agentShell(g.pve.qemu(ref.node, ref.vmid)), plan, opts);
        return {};
      }
      const conn = await connectSsh(target(state), { signal: ctx.signal, timeout: 60_000 });
      try {
        await initGuest(sshShell(conn), plan, opts);
      } finally {
        conn.close();
      }
      return {};
    },

    async 'VM initialization > rebooting VM'(ctx, state) {
      const ref = refOf(state);
      await runTask({ signal: ctx.signal, timeout: TIMEOUTS.action }, (o) => g.pve.qemu(ref.node, ref.vmid).reboot(o));
      await ctx.log(`VM ${ref.vmid} rebooting`);
      await ready(ctx, state);
      return {};
    },

    'VM initialization > finalizing': common.finalize,
  };
}
