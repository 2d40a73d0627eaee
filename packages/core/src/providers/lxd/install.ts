import { isIPv4 } from 'node:net';
import { type CallOptions, NotFoundError, sleep } from '@vmplane/common';
import { checkInstanceName, type LxdClient, type OperationProgress } from '@vmplane/lxd';
import type { StageContext } from '../../engine/stage.js';
import { AlreadyExistsError, InvalidRequestError } from '../../errors.js';
import type { InstallPlan, InstallSpec, InstallState, StageOutcome, UsedResources } from '../provider.js';
import { DEFAULTS, type Ipv4Allocator, type LxdContext } from './context.js';
import { defaultRemote, findLocal, lxdType, parseImage, remoteFingerprint } from './images.js';
import { migrateInstance, rootPoolOf } from './operations.js';
import { waitReady } from './ready.js';
import { ENV_PREFIX, KEY_ID, KEY_IMAGE, KEY_OPERATION, primaryIpv4, refOf, TAG_PREFIX } from './states.js';
import { UNDO_DELETE_IMAGE, UNDO_DELETE_INSTANCE } from './undo.js';
import { initializeUser } from './users.js';

export interface InstallDeps {
  ctx: LxdContext;
  used(opts: CallOptions): Promise<UsedResources>;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** The least memory LXD itself accepts for an instance to start is far above this; anything less is a typo. */
const MIN_MEMORY_MIB = 16;
/** Config keys LXD takes: letters, digits and `.`, `_`, `-` (user.* and environment.* keys alike). */
const CONFIG_KEY_PART = /^[A-Za-z0-9_.-]+$/;

/**
 * The LXD install, stage by stage (go-pve-qemu's names). Each stage reads what earlier ones
 * learnt from `state` (journal-safe: no secret in it) or recomputes it from the spec, so a run
 * resumed after a restart needs nothing held in memory. Undo intents are registered before the
 * step that makes what they undo: the instance's before its create request is sent, the image's
 * before the download starts.
 */
export function installPlan(deps: InstallDeps, spec: InstallSpec): InstallPlan {
  const { ctx } = deps;
  const client = (s: StageContext) => ctx.client({ signal: s.signal });
  const kind = lxdType(spec.kind);

  const remoteOf = () => {
    const parsed = parseImage(spec.image, ctx.options);
    return parsed.remote ?? defaultRemote(ctx.options, parsed.alias);
  };

  return {
    'preparation > checking VMID': async (s, state) => {
      if (state.vmid === undefined) return { skipped: true, message: 'no VMID: LXD knows instances by name' };
      const used = await deps.used({ signal: s.signal });
      if (used.vmids.has(state.vmid)) {
        throw new AlreadyExistsError({ message: `VMID ${state.vmid} is held by another instance (${KEY_ID})` });
      }
      return { message: `VMID ${state.vmid} is free` };
    },

    'preparation > assigning IP': async (s, state) => {
      const net = ctx.options.network;
      if (!net) return { skipped: true, message: 'no managed bridge configured: the network gives the address' };
      const lxd = await client(s);
      const bridge = await lxd.networks.get(net.bridge, { signal: s.signal });
      if (!bridge.managed || bridge.type !== 'bridge') {
        throw new InvalidRequestError({
          message: `${net.bridge} is not a managed LXD bridge`,
          field: 'network.bridge',
        });
      }
      if (state.ipv4 === undefined && !net.pool) {
        return { skipped: true, message: `no address pool: ${net.bridge}'s DHCP gives the address` };
      }
      const used = await deps.used({ signal: s.signal });
      const ip = state.ipv4 ?? (await allocate(net.pool as Ipv4Allocator, s.operationId, spec.name, used));
      if (!isIPv4(ip))
        throw new InvalidRequestError({ message: `the pool gave ${ip}, no IPv4 address`, field: 'ipv4' });
      if (used.ipv4.has(ip)) throw new AlreadyExistsError({ message: `${ip} is in use on ${net.bridge}` });
      const subnet = bridge.config['ipv4.address'];
      if (subnet && !inSubnet(ip, subnet)) {
        throw new InvalidRequestError({ message: `${ip} is outside ${net.bridge}'s ${subnet}`, field: 'ipv4' });
      }
      state.ipv4 = ip;
      return { message: `${ip} on ${net.bridge}` };
    },

    'preparation > validating CPU and RAM': async (s) => {
      if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) {
        throw new InvalidRequestError({ message: 'vcpus must be a whole number from 1', field: 'vcpus' });
      }
      if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < MIN_MEMORY_MIB) {
        throw new InvalidRequestError({ message: `memory must be at least ${MIN_MEMORY_MIB} MiB`, field: 'memory' });
      }
      const resources = await (await ctx.server({ signal: s.signal })).server.resources({ signal: s.signal });
      if (spec.vcpus > resources.cpu.total) {
        throw new InvalidRequestError({
          message: `${spec.vcpus} vCPUs asked, the host has ${resources.cpu.total}`,
          field: 'vcpus',
        });
      }
      if (spec.memoryMiB * MiB > resources.memory.total) {
        throw new InvalidRequestError({
          message: `${spec.memoryMiB} MiB asked, the host has ${Math.floor(resources.memory.total / MiB)} MiB`,
          field: 'memory',
        });
      }
      return {
        message: `${spec.vcpus} of ${resources.cpu.total} CPUs, ${spec.memoryMiB} of ${Math.floor(resources.memory.total / MiB)} MiB`,
      };
    },

    'preparation > validating disk size': async (s) => {
      if (!Number.isInteger(spec.diskGiB) || spec.diskGiB < 1) {
        throw new InvalidRequestError({ message: 'disk size must be a whole number of GiB from 1', field: 'disk' });
      }
      const lxd = await client(s);
      const pool = await rootPoolOf(lxd, ctx.options, { signal: s.signal });
      const space = (await lxd.storagePools.resources(pool, { signal: s.signal })).space;
      if (space.total > 0 && spec.diskGiB * GiB > space.total) {
        throw new InvalidRequestError({
          message: `${spec.diskGiB} GiB asked, pool ${pool} holds ${Math.floor(space.total / GiB)} GiB`,
          field: 'disk',
        });
      }
      const free = Math.floor((space.total - space.used) / GiB);
      // Pools are thin (dir, zfs, btrfs, lvm-thin): more than is free now is allowed, but said.
      if (space.total > 0 && spec.diskGiB > free) await s.log(`pool ${pool} has ${free} GiB free now`);
      return { message: `${spec.diskGiB} GiB on pool ${pool} (${free} GiB free)` };
    },

    'preparation > setting default config values': async (s, state) => {
      checkInstanceName(spec.name);
      for (const [what, keys] of [
        ['tags', Object.keys(spec.tags ?? {})],
        ['env', Object.keys(spec.env ?? {})],
      ] as const) {
        const bad = keys.find((k) => !CONFIG_KEY_PART.test(k));
        if (bad !== undefined) {
          throw new InvalidRequestError({
            message: `${what} key ${JSON.stringify(bad)} is not an LXD config key`,
            field: what,
          });
        }
      }
      const lxd = await client(s);
      if (await lxd.instances.exists(spec.name, { signal: s.signal })) {
        throw new AlreadyExistsError({ message: `an instance named ${spec.name} exists in project ${ctx.project}` });
      }
      const base = await ctx.server({ signal: s.signal });
      state.node = base.serverInfo?.environment?.server_name ?? 'lxd';
      const profiles = ctx.options.profiles ?? ['default'];
      return {
        message: `${kind} ${spec.name} in project ${ctx.project}, profiles ${profiles.join(',')}, readiness ${spec.readiness ?? 'exec'}`,
      };
    },

    'preparation > checking storage pool': async (s, state) => {
      const lxd = await client(s);
      const pool = await rootPoolOf(lxd, ctx.options, { signal: s.signal });
      const found = await lxd.storagePools.get(pool, { signal: s.signal });
      state.storage = found.name;
      return { message: `pool ${found.name} (${found.driver}) is ${found.status}` };
    },

    'OS preparation > getting OS image': async (s, state) => {
      const lxd = await client(s);
      const parsed = parseImage(spec.image, ctx.options);
      if (!parsed.remote) {
        const local = await findLocal(lxd, parsed.local, { signal: s.signal });
        if (local) {
          state.imageVolume = local.fingerprint;
          delete state.imageUrl;
          return { message: `local image ${local.fingerprint.slice(0, 12)} (${local.via})` };
        }
      }
      const remote = parsed.remote ?? defaultRemote(ctx.options, parsed.alias);
      if (!remote) {
        throw new InvalidRequestError({
          message: `no local image ${parsed.local.join(' or ')} and no default image server`,
          field: 'image',
        });
      }
      state.imageUrl = remote.server.url;
      return { message: `${remote.alias} from ${remote.name} (${remote.server.url})` };
    },

    'OS preparation > validating OS image URL': async (s, state) => {
      const lxd = await client(s);
      if (state.imageUrl === undefined) {
        const fingerprint = needImage(state);
        const image = await lxd.images.get(fingerprint, { signal: s.signal });
        if (image.type !== kind) {
          throw new InvalidRequestError({
            message: `image ${fingerprint.slice(0, 12)} is a ${image.type} image`,
            field: 'image',
          });
        }
        return { message: `image ${fingerprint.slice(0, 12)} is a ${image.type} image for ${image.architecture}` };
      }
      const remote = remoteOf();
      if (!remote)
        throw new InvalidRequestError({ message: 'the image server is no longer configured', field: 'image' });
      const fingerprint = await remoteFingerprint(remote, spec.kind, { signal: s.signal });
      state.imageVolume = fingerprint;
      return { message: `${remote.server.url} has ${remote.alias} (${fingerprint.slice(0, 12)})` };
    },

    'OS preparation > downloading OS image': async (s, state) => {
      const lxd = await client(s);
      const fingerprint = needImage(state);
      if (await lxd.images.exists(fingerprint, { signal: s.signal })) {
        return { renamedTo: 'OS preparation > using OS image', message: `image ${fingerprint.slice(0, 12)} is here` };
      }
      const remote = remoteOf();
      if (!remote)
        throw new InvalidRequestError({ message: `image ${fingerprint.slice(0, 12)} is gone`, field: 'image' });
      // Registered before the pull: an interrupted download leaves nothing (the client removes a
      // partial image), a finished one is removed again if the install fails later.
      const undo = await s.registerUndo(UNDO_DELETE_IMAGE, { project: ctx.project, fingerprint });
      const copied = await lxd.images.copyFrom(
        {
          server: remote.server.url,
          protocol: remote.server.protocol,
          alias: remote.alias,
          type: kind,
          ...(remote.server.certificate === undefined ? {} : { certificate: remote.server.certificate }),
        },
        { ...ctx.long(s.signal), onProgress: progressLogger(s) },
      );
      if (copied.fingerprint !== fingerprint) {
        await undo.update({ project: ctx.project, fingerprint: copied.fingerprint });
        state.imageVolume = copied.fingerprint;
      }
      return { message: `downloaded ${copied.fingerprint.slice(0, 12)} (${Math.round(copied.size / MiB)} MiB)` };
    },

    'SSH preparation > checking SSH key': async () => ({
      skipped: true,
      message: 'no key store on LXD: a given key goes into the guest at SSH initialization',
    }),

    'VM creation > creating VM': async (s, state) => {
      const lxd = await client(s);
      const fingerprint = needImage(state);
      const pool = state.storage ?? (await rootPoolOf(lxd, ctx.options, { signal: s.signal }));
      const config: Record<string, string> = {
        'limits.cpu': String(spec.vcpus),
        'limits.memory': `${spec.memoryMiB}MiB`,
        [KEY_IMAGE]: spec.image,
        [KEY_OPERATION]: s.operationId,
      };
      if (state.vmid !== undefined) config[KEY_ID] = String(state.vmid);
      for (const [k, v] of Object.entries(spec.tags ?? {})) config[`${TAG_PREFIX}${k}`] = v;
      const devices: Record<string, Record<string, string>> = {
        root: { type: 'disk', path: '/', pool, size: `${spec.diskGiB}GiB` },
      };
      const net = ctx.options.network;
      if (net) {
        devices.eth0 = { type: 'nic', network: net.bridge, name: 'eth0' };
        if (state.ipv4 !== undefined) devices.eth0['ipv4.address'] = state.ipv4;
      }
      // Before the request leaves: a create cut short by a crash or a timeout may still have made
      // the instance. The handler deletes only an instance that carries this operation's id.
      await s.registerUndo(UNDO_DELETE_INSTANCE, { project: ctx.project, name: spec.name, operation: s.operationId });
      const op = await lxd.instances.create(
        {
          name: spec.name,
          type: kind,
          source: { type: 'image', fingerprint },
          profiles: [...(ctx.options.profiles ?? ['default'])],
          config,
          devices,
        },
        ctx.long(s.signal),
      );
      await op.wait(ctx.long(s.signal));
      state.ref = refOf(ctx.project, { name: spec.name, type: kind });
      return {
        message: `${kind} ${spec.name}: ${spec.vcpus} vCPU, ${spec.memoryMiB} MiB, ${spec.diskGiB} GiB on ${pool}`,
      };
    },

    'VM creation > importing disk image': async () => ({
      skipped: true,
      message: 'LXD unpacks the image into the root disk when it creates the instance',
    }),

    'VM initialization > initializing configuration': async (s) => {
      const env = Object.entries(spec.env ?? {});
      const notes = spec.command?.length ? ['command not run: LXD guests run their own init'] : [];
      if (env.length === 0) return { skipped: true, message: ['no environment', ...notes].join('; ') };
      const lxd = await client(s);
      const config = Object.fromEntries(env.map(([k, v]) => [`${ENV_PREFIX}${k}`, v]));
      await lxd.instances.patch(spec.name, { config }, { signal: s.signal });
      return { message: [`${env.length} environment variable(s) set`, ...notes].join('; ') };
    },

    'VM initialization > migrating VM': async (s, state) => {
      if (spec.targetNode === undefined) return { skipped: true, message: 'no target node' };
      if (!(await ctx.isClustered({ signal: s.signal }))) {
        return { skipped: true, message: 'LXD is not clustered: the instance stays where it is' };
      }
      const lxd = await client(s);
      const instance = await lxd.instances.get(spec.name, { signal: s.signal });
      if (instance.location === spec.targetNode) return { skipped: true, message: `already on ${spec.targetNode}` };
      await migrateInstance(lxd, ctx, spec.name, spec.targetNode, ctx.long(s.signal));
      state.node = spec.targetNode;
      return { message: `moved to ${spec.targetNode}` };
    },

    'VM initialization > waiting for ready': async (s) => {
      const lxd = await client(s);
      const instance = await lxd.instances.get(spec.name, { signal: s.signal });
      if (instance.status === 'Frozen') {
        await s.log(`unfreezing ${spec.name}`);
        await lxd.instances.unfreeze(spec.name, { signal: s.signal });
      } else if (instance.status !== 'Running') {
        await s.log(`starting ${spec.name}`);
        await lxd.instances.start(spec.name, ctx.long(s.signal));
      }
      await waitReady(lxd, spec.name, {
        signal: s.signal,
        timeout: ctx.options.readinessTimeoutMs ?? DEFAULTS.readinessTimeoutMs,
        readiness: spec.readiness ?? 'exec',
        onAttempt: (attempt, why) => {
          // A line every few tries: enough to see it wait, not a line per 250 ms.
          if (attempt === 1 || attempt % 5 === 0) void s.log(`not ready yet (try ${attempt}): ${why}`).catch(() => {});
        },
      });
      return { message: spec.readiness === 'ssh' ? 'exec and SSH answer' : 'exec answers' };
    },

    'VM initialization > SSH initialization': async (s) => {
      if (spec.user === undefined && spec.password === undefined && spec.sshPublicKey === undefined) {
        return { skipped: true, message: 'no user, password or key asked for' };
      }
      const lxd = await client(s);
      const message = await initializeUser(
        lxd,
        spec.name,
        { user: spec.user, password: spec.password, sshPublicKey: spec.sshPublicKey },
        { signal: s.signal, log: (line) => s.log(line) },
      );
      return { message };
    },

    'VM initialization > rebooting VM': async () => ({
      skipped: true,
      message: 'LXD applies limits and environment without a reboot',
    }),

    'VM initialization > finalizing': async (s, state) => {
      const lxd = await client(s);
      let ip = primaryIpv4(await lxd.instances.state(spec.name, { signal: s.signal }));
      const staticIp = ctx.options.network ? state.ipv4 : undefined;
      // On a bridge the address shows once the guest's DHCP client asked (for a static one too).
      if (ip === undefined && ctx.options.network) {
        ip = await waitForAddress(lxd, spec.name, ctx.options.addressWaitMs ?? DEFAULTS.addressWaitMs, s.signal);
      }
      state.ref = refOf(ctx.project, { name: spec.name, type: kind });
      if (ip !== undefined) {
        state.ipv4 = ip;
        return { message: `${spec.name} is at ${ip}` };
      }
      if (staticIp !== undefined) return { message: `${spec.name} has ${staticIp} (not on its interface yet)` };
      delete state.ipv4;
      return { message: `${spec.name} has no IPv4 address` };
    },
  } satisfies Record<keyof InstallPlan, (s: StageContext, state: InstallState) => Promise<StageOutcome>>;
}

function needImage(state: InstallState): string {
  if (state.imageVolume === undefined) {
    throw new InvalidRequestError({ message: 'no image was resolved (OS preparation did not run)', field: 'image' });
  }
  return state.imageVolume;
}

async function allocate(pool: Ipv4Allocator, owner: string, name: string, used: UsedResources): Promise<string> {
  if (typeof pool === 'function') return pool({ owner, name, used });
  return (await pool.allocate({ owner, used })).ipv4;
}

function toInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** `ip` inside `cidr` (LXD's `10.0.3.1/24` form: the gateway and the prefix) and not the gateway. */
export function inSubnet(ip: string, cidr: string): boolean {
  const [gateway, bits] = cidr.split('/');
  if (!gateway || !isIPv4(gateway) || bits === undefined) return true; // `auto`/`none`: nothing to check
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ip !== gateway && (toInt(ip) & mask) >>> 0 === (toInt(gateway) & mask) >>> 0;
}

/** Logs download progress at most once per 10 %, so a pull is a handful of lines. */
function progressLogger(s: StageContext): (p: OperationProgress) => void {
  let last = -10;
  return (p) => {
    if (p.percent === undefined || p.percent < last + 10) return;
    last = p.percent;
    void s.log(p.text ?? `downloading: ${p.percent}%`).catch(() => {});
  };
}

/** A static address shows on the interface once the guest's DHCP client asked for it. */
async function waitForAddress(
  lxd: LxdClient,
  name: string,
  waitMs: number,
  signal: AbortSignal,
): Promise<string | undefined> {
  const until = Date.now() + waitMs;
  while (Date.now() < until && !signal.aborted) {
    try {
      const ip = primaryIpv4(await lxd.instances.state(name, { signal }));
      if (ip !== undefined) return ip;
      await sleep(Math.min(1_000, Math.max(0, until - Date.now())), signal);
    } catch (error) {
      if (error instanceof NotFoundError || signal.aborted) throw error;
    }
  }
  return undefined;
}
