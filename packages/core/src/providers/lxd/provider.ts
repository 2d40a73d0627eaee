import { type CallOptions, callOptions, NotFoundError, sleep } from '@vmplane/common';
import type { LxdClient, Resources } from '@vmplane/lxd';
import { InvalidRequestError, InvalidStateError, UnsupportedError } from '../../errors.js';
import type { LxdRef, ProviderRef } from '../../model/instance.js';
import type {
  Capability,
  InstallPlan,
  InstallSpec,
  NodeCapacity,
  ObservedGuest,
  Provider,
  UndoHandler,
  UsedResources,
} from '../provider.js';
import { DEFAULTS, LxdContext, type LxdProviderOptions } from './context.js';
import { readPath, statPath, writePath } from './files.js';
import { installPlan } from './install.js';
import { copyInstance, growRoot, migrateInstance, rootPoolOf } from './operations.js';
import { LxdGuestProcess } from './process.js';
import { waitReady } from './ready.js';
import { ipv4sOf, observe, parseCpuLimit, parseMemoryLimit, primaryIpv4, vmidOf } from './states.js';
import { deleteInstance, undoHandlers } from './undo.js';
import { watchGuests } from './watch.js';

/** What every LXD daemon gives; `standby` needs CRIU and `migrate` a cluster, both found out. */
const BASE_CAPABILITIES: readonly Capability[] = [
  'containers',
  'vms',
  'install',
  'exec',
  'files',
  'console-log',
  'stats',
  'snapshots',
  'snapshot-restore',
  'fork',
  'events',
  'resize-cpu',
  'resize-memory',
  'grow-disk',
];
const MIN_MEMORY_MIB = 16;
const HOST_CACHE_MS = 60_000;
const CONSOLE_POLL_MS = 1_000;

/** The optional members of Provider that this one always has (some answer UnsupportedError here). */
type Implemented =
  | 'watch'
  | 'exec'
  | 'stat'
  | 'readFile'
  | 'writeFile'
  | 'consoleLog'
  | 'stats'
  | 'setCpu'
  | 'setMemory'
  | 'growDisk'
  | 'migrate'
  | 'snapshot'
  | 'restoreSnapshot'
  | 'deleteSnapshot'
  | 'standby'
  | 'resume'
  | 'fork';

/** The LXD provider: core's Provider with every optional member present, plus the connection's own life. */
export type LxdProvider = Provider &
  Required<Pick<Provider, Implemented>> & {
    readonly type: 'lxd';
    /** The LXD project its guests live in. */
    readonly project: string;
    /** Connects now (else the first call does) and learns what depends on the daemon: clustering. */
    connect(opts?: CallOptions): Promise<LxdClient>;
    /** Closes a connection the provider made; a client it was given is the giver's to close. */
    close(): void;
  };

/**
 * A Provider over one LXD daemon (or cluster), for one project.
 *
 * States (LXD's status → hypeman's InstanceState; the same table is in STATES.md):
 *
 * | LXD status                             | InstanceState | note                                             |
 * | -------------------------------------- | ------------- | ------------------------------------------------ |
 * | Running, Ready, Thawed                 | Running       | core shows Initializing until waitReady answers  |
 * | Stopped                                | Stopped       |                                                  |
 * | Stopped with saved state (`stateful`)  | Standby       | CRIU state on disk; start resumes it             |
 * | Frozen, Freezing                       | Paused        |                                                  |
 * | Starting, Pending                      | Initializing  |                                                  |
 * | Created, Operation created             | Created       |                                                  |
 * | Stopping, Aborting, Cancelling         | Shutdown      |                                                  |
 * | Error, anything else                   | Unknown       | `backendStatus` keeps LXD's word                 |
 *
 * `list()` and `get()` report the backend's view: a guest that just booted is Running there. Core
 * keeps it Initializing until `waitReady` (exec of `true` exits 0) has answered.
 *
 * The connection is made on first use, so a provider exists (and `probe()` says why it cannot
 * reach the daemon) while the daemon is down.
 */
export function createLxdProvider(options: LxdProviderOptions): LxdProvider {
  const ctx = new LxdContext(options);
  const kinds = new Map<string, LxdRef['kind']>();
  let host: { at: number; resources: Promise<Resources> } | undefined;

  const lxd = (opts?: CallOptions) => ctx.client(callOptions(opts));
  const nameOf = (ref: ProviderRef) => ctx.ref(ref).name;
  const hostResources = (opts?: CallOptions): Promise<Resources> => {
    if (!host || Date.now() - host.at > HOST_CACHE_MS) {
      const resources = ctx.server(callOptions(opts)).then((c) => c.server.resources(callOptions(opts)));
      resources.catch(() => {
        host = undefined;
      });
      host = { at: Date.now(), resources };
    }
    return host.resources;
  };
  const remember = (guest: ObservedGuest) => {
    if (guest.ref.type === 'lxd') kinds.set(guest.ref.name, guest.ref.kind);
    return guest;
  };
  const unsupported = (capability: string, message?: string) =>
    new UnsupportedError({ provider: ctx.name, capability, ...(message === undefined ? {} : { message }) });

  const get = async (ref: ProviderRef, opts?: CallOptions): Promise<ObservedGuest | undefined> => {
    const client = await lxd(opts);
    try {
      const instance = await client.instances.getFull(nameOf(ref), callOptions(opts));
      const memory = instance.expanded_config?.['limits.memory']?.endsWith('%')
        ? (await hostResources(opts)).memory.total
        : undefined;
      return remember(observe(ctx.project, instance, memory));
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  };

  const used = async (opts?: CallOptions): Promise<UsedResources> => {
    const instances = await (await lxd(opts)).instances.listFull(callOptions(opts));
    const vmids = new Set<number>();
    const ipv4 = new Set<string>();
    for (const instance of instances) {
      const id = vmidOf(instance.config ?? {});
      if (id !== undefined) vmids.add(id);
      for (const address of ipv4sOf(instance)) ipv4.add(address);
    }
    return { vmids, ipv4 };
  };

  const undo: Record<string, UndoHandler> = undoHandlers(ctx);

  const provider: LxdProvider = {
    name: ctx.name,
    type: 'lxd',
    project: ctx.project,
    get capabilities(): ReadonlySet<Capability> {
      const caps = new Set<Capability>(BASE_CAPABILITIES);
      if (ctx.criu) caps.add('standby');
      if (ctx.clustered) caps.add('migrate');
      return caps;
    },
    undo,

    async connect(opts) {
      const client = await lxd(opts);
      await ctx.isClustered(callOptions(opts));
      return client;
    },
    close: () => ctx.close(),

    async probe(opts) {
      try {
        const base = await ctx.server(callOptions(opts));
        const info = await base.refreshServer(callOptions(opts));
        await ctx.isClustered(callOptions(opts));
        return { reachable: true, version: info.environment.server_version };
      } catch (error) {
        return { reachable: false, error: error instanceof Error ? error.message : String(error) };
      }
    },

    async nodes(opts) {
      const base = await ctx.server(callOptions(opts));
      if (await ctx.isClustered(callOptions(opts))) {
        const members = await base.cluster.members(callOptions(opts));
        return members.map((m) => ({ name: m.server_name, online: m.status === 'Online' }));
      }
      const resources = await hostResources(opts);
      const node: NodeCapacity = {
        name: base.serverInfo?.environment?.server_name ?? 'lxd',
        online: true,
        cpus: resources.cpu.total,
        memoryBytes: resources.memory.total,
        memoryUsedBytes: resources.memory.used,
      };
      try {
        const client = await lxd(opts);
        const pool = await rootPoolOf(client, options, callOptions(opts));
        const space = (await client.storagePools.resources(pool, callOptions(opts))).space;
        node.diskBytes = space.total;
        node.diskUsedBytes = space.used;
      } catch {
        // No root pool to measure (profiles without a root disk): the node is still there.
      }
      return [node];
    },

    async list(opts) {
      const instances = await (await lxd(opts)).instances.listFull(callOptions(opts));
      const needsHost = instances.some((i) => i.expanded_config?.['limits.memory']?.endsWith('%'));
      const memory = needsHost ? (await hostResources(opts)).memory.total : undefined;
      return instances.map((i) => remember(observe(ctx.project, i, memory)));
    },
    get,
    used,

    watch(signal) {
      return watchGuests({ ctx, kindOf: (name) => kinds.get(name) ?? 'container' }, signal);
    },

    install(spec: InstallSpec): InstallPlan {
      return installPlan({ ctx, used }, spec);
    },

    async start(ref, opts) {
      const name = nameOf(ref);
      const client = await lxd(opts);
      const instance = await client.instances.get(name, callOptions(opts));
      if (instance.status === 'Running') return;
      if (instance.status === 'Frozen') return client.instances.unfreeze(name, callOptions(opts));
      await client.instances.start(name, { ...longOrGiven(ctx, opts), stateful: instance.stateful === true });
    },

    async stop(ref, opts) {
      const name = nameOf(ref);
      const client = await lxd(opts);
      const instance = await client.instances.get(name, callOptions(opts));
      if (instance.status === 'Stopped') return;
      if (opts?.force) return client.instances.stop(name, { ...callOptions(opts), force: true });
      // A frozen guest cannot hear a shutdown request.
      if (instance.status === 'Frozen') await client.instances.unfreeze(name, callOptions(opts));
      const seconds = options.stopTimeoutSeconds ?? DEFAULTS.stopTimeoutSeconds;
      await client.instances.stop(name, {
        stopTimeout: seconds,
        ...callOptions(opts),
        timeout: opts?.timeout ?? (seconds + 30) * 1000,
      });
    },

    async reboot(ref, opts) {
      const name = nameOf(ref);
      const client = await lxd(opts);
      const instance = await client.instances.get(name, callOptions(opts));
      if (instance.status !== 'Running') {
        throw new InvalidStateError({ state: instance.status, action: 'reboot' });
      }
      const seconds = options.stopTimeoutSeconds ?? DEFAULTS.stopTimeoutSeconds;
      await client.instances.restart(name, {
        stopTimeout: seconds,
        ...callOptions(opts),
        timeout: opts?.timeout ?? (seconds + 60) * 1000,
      });
    },

    async destroy(ref, opts) {
      await deleteInstance(await lxd(opts), nameOf(ref), longOrGiven(ctx, opts));
      if (ref.type === 'lxd') kinds.delete(ref.name);
    },

    async waitReady(ref, opts) {
      await waitReady(await lxd(opts), nameOf(ref), {
        ...callOptions(opts),
        timeout: opts?.timeout ?? options.readinessTimeoutMs ?? DEFAULTS.readinessTimeoutMs,
        ...(opts?.readiness === undefined ? {} : { readiness: opts.readiness }),
      });
    },

    async exec(ref, request, opts) {
      const name = nameOf(ref);
      if (typeof request !== 'object' || request === null) {
        throw new InvalidRequestError({ message: 'exec takes a request object', field: 'request' });
      }
      const client = await lxd(opts);
      const common = {
        command: request.command,
        ...(request.env === undefined ? {} : { env: request.env }),
        ...(request.cwd === undefined ? {} : { cwd: request.cwd }),
        ...callOptions(opts),
      };
      const session = request.tty
        ? await client.instances.execInteractive(name, {
            ...common,
            width: request.cols ?? 80,
            height: request.rows ?? 24,
          })
        : await client.instances.spawn(name, common);
      const process = new LxdGuestProcess(session, request.tty === true);
      if (request.stdin !== undefined) process.feed(request.stdin);
      else if (!request.interactive && !request.tty) process.feed(undefined);
      return process;
    },

    async stat(ref, path, opts) {
      return statPath(await lxd(opts), nameOf(ref), path, opts ?? {});
    },
    async readFile(ref, path, opts) {
      return readPath(await lxd(opts), nameOf(ref), path, opts ?? {});
    },
    async writeFile(ref, path, data, opts) {
      await writePath(await lxd(opts), nameOf(ref), path, data, opts ?? {});
    },

    async *consoleLog(ref, opts) {
      const name = nameOf(ref);
      const client = await lxd(opts);
      let previous = '';
      for (;;) {
        const text = await readConsole(client, name, opts);
        if (text.startsWith(previous)) {
          if (text.length > previous.length) yield text.slice(previous.length);
        } else if (text !== '') {
          yield text; // The ring buffer wrapped or was cleared: what it holds now is all new.
        }
        previous = text;
        if (!opts?.follow) return;
        try {
          await sleep(CONSOLE_POLL_MS, opts.signal);
        } catch {
          return;
        }
      }
    },

    async stats(ref, opts) {
      const client = await lxd(opts);
      const instance = await client.instances.getFull(nameOf(ref), callOptions(opts));
      const resources = await hostResources(opts);
      const config = instance.expanded_config ?? {};
      const state = instance.state;
      const nic = nicOf(state?.network ?? {});
      return {
        cpuSeconds: (state?.cpu?.usage ?? 0) / 1e9,
        memoryRssBytes: state?.memory?.usage ?? 0,
        // Containers have no virtual size of their own: what the cgroup charges, swap included.
        memoryVmsBytes: (state?.memory?.usage ?? 0) + (state?.memory?.swap_usage ?? 0),
        networkRxBytes: nic?.counters?.bytes_received ?? 0,
        networkTxBytes: nic?.counters?.bytes_sent ?? 0,
        allocatedVcpus: parseCpuLimit(config['limits.cpu']) ?? resources.cpu.total,
        allocatedMemoryBytes:
          parseMemoryLimit(config['limits.memory'], resources.memory.total) ?? resources.memory.total,
      };
    },

    async setCpu(ref, vcpus, opts) {
      if (!Number.isInteger(vcpus) || vcpus < 1) {
        throw new InvalidRequestError({ message: 'vcpus must be a whole number from 1', field: 'vcpus' });
      }
      const client = await lxd(opts);
      await client.instances.patch(nameOf(ref), { config: { 'limits.cpu': String(vcpus) } }, callOptions(opts));
    },

    async setMemory(ref, memoryMiB, opts) {
      if (!Number.isInteger(memoryMiB) || memoryMiB < MIN_MEMORY_MIB) {
        throw new InvalidRequestError({ message: `memory must be at least ${MIN_MEMORY_MIB} MiB`, field: 'memory' });
      }
      const client = await lxd(opts);
      await client.instances.patch(nameOf(ref), { config: { 'limits.memory': `${memoryMiB}MiB` } }, callOptions(opts));
    },

    async growDisk(ref, byGiB, opts) {
      await growRoot(await lxd(opts), nameOf(ref), byGiB, opts ?? {});
    },

    async migrate(ref, node, opts) {
      if (!(await ctx.isClustered(callOptions(opts)))) throw unsupported('migrate', 'LXD is not clustered here');
      const name = nameOf(ref);
      await migrateInstance(await lxd(opts), ctx, name, node, longOrGiven(ctx, opts));
      return ctx.ref(ref);
    },

    async snapshot(ref, snapshot, opts) {
      if (opts?.stateful && !ctx.criu) throw unsupported('standby', 'stateful snapshots need CRIU, which is not here');
      const client = await lxd(opts);
      await client.instances.snapshots.create(
        nameOf(ref),
        { name: snapshot, stateful: opts?.stateful === true },
        longOrGiven(ctx, opts),
      );
    },

    async restoreSnapshot(ref, snapshot, opts) {
      const client = await lxd(opts);
      await client.instances.snapshots.restore(nameOf(ref), snapshot, longOrGiven(ctx, opts));
    },

    async deleteSnapshot(ref, snapshot, opts) {
      const client = await lxd(opts);
      try {
        await client.instances.snapshots.delete(nameOf(ref), snapshot, longOrGiven(ctx, opts));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    },

    async standby(ref, opts) {
      if (!ctx.criu) throw unsupported('standby', 'standby needs CRIU (stateful stop), which is not here');
      const client = await lxd(opts);
      await client.instances.stop(nameOf(ref), { ...longOrGiven(ctx, opts), stateful: true });
    },

    async resume(ref, opts) {
      if (!ctx.criu) throw unsupported('standby', 'resume needs CRIU (stateful start), which is not here');
      const client = await lxd(opts);
      await client.instances.start(nameOf(ref), { ...longOrGiven(ctx, opts), stateful: true });
    },

    async fork(ref, name, opts) {
      const source = ctx.ref(ref);
      const client = await lxd(opts);
      // provider.ts's fork takes `vmid` (core's id for the copy); read so as to build with either form.
      const vmid = (opts as { vmid?: number } | undefined)?.vmid;
      const copied = await copyInstance(client, source.name, name, {
        ...longOrGiven(ctx, opts),
        ...(vmid === undefined ? {} : { vmid }),
      });
      if (copied.running) await client.instances.start(name, longOrGiven(ctx, opts));
      const forked: LxdRef = {
        type: 'lxd',
        project: ctx.project,
        name,
        kind: copied.type === 'virtual-machine' ? 'virtual-machine' : 'container',
      };
      kinds.set(name, forked.kind);
      return forked;
    },
  };
  return provider;
}

/** The caller's deadline when it gave one, else our cap for long steps (not the client's 30 s). */
function longOrGiven(ctx: LxdContext, opts: CallOptions | undefined): CallOptions {
  return opts?.timeout === undefined ? ctx.long(opts?.signal) : callOptions(opts);
}

/** eth0, else the interface that holds the guest's address (a VM's are named by the guest). */
function nicOf(network: NonNullable<NonNullable<Awaited<ReturnType<LxdClient['instances']['state']>>>['network']>) {
  if (network.eth0) return network.eth0;
  const address = primaryIpv4({ network } as Parameters<typeof primaryIpv4>[0]);
  return Object.values(network).find((n) => n.addresses?.some((a) => a.address === address));
}

/**
 * The console log. LXD 5.0.2 answers 500 "open : no such file or directory" while a container's
 * console ring buffer is empty (liblxc writes no log file then): that is an empty log.
 */
async function readConsole(client: LxdClient, name: string, opts: CallOptions | undefined): Promise<string> {
  try {
    return await client.instances.console.log(name, callOptions(opts));
  } catch (error) {
    if (error instanceof Error && /no such file or directory/.test(error.message) && 'status' in error) {
      if ((error as { status: unknown }).status === 500) return '';
    }
    throw error;
  }
}
