import { type CallOptions, InvalidArgumentError, path } from '@vmplane/common';
import { type ConsoleConnection, consoleUrl, openConsoleSocket } from '../console.js';
import { BACKEND } from '../errors.js';
import { type GuestConfig, type GuestType, parseGuestConfig, type RawConfig } from '../guest-config.js';
import {
  checkDisk,
  checkGuestVmid,
  checkNode,
  checkText,
  configKeyList,
  optionalEnum,
  optionalInteger,
  optionalNode,
  optionalPool,
  optionalSnapshotName,
  optionalStorage,
  optionalVmid,
} from '../ids.js';
import { callOptions, options, readOptions } from '../options.js';
import type { PropertyValue } from '../property-string.js';
import type { Task } from '../task.js';
import type { ReadOptions } from '../transport.js';
import type {
  ClusterStatusEntry,
  GuestNetworkInterface,
  LxcStatus,
  MigrateRefusal,
  QemuStatus,
  TermProxy,
  VncProxy,
} from '../types.js';
import type { Context } from './context.js';
import { SnapshotsApi } from './snapshots.js';

/** Config values to set; `undefined` entries are left out. Booleans are sent as 1/0. */
export type ConfigValues = Readonly<Record<string, PropertyValue>>;

export interface ConfigUpdateOptions extends CallOptions {
  /** Keys to remove from the config. */
  delete?: readonly string[];
  /** Refuse the change when the config's SHA1 no longer matches (from GuestConfig.digest). */
  digest?: string;
}

export interface DeleteOptions extends CallOptions {
  /** Also remove the VMID from backup jobs, replication and HA. */
  purge?: boolean;
  /** Also destroy disks with this VMID that the config does not reference. */
  destroyUnreferencedDisks?: boolean;
  /** QEMU: ignore locks (root only). */
  skiplock?: boolean;
  /** LXC: destroy even if running. */
  force?: boolean;
}

export interface CloneOptions extends CallOptions {
  /** VMID of the copy; the cluster's next free id when left out. */
  newid?: number;
  /** QEMU: the new VM's name. LXC: the new container's hostname. */
  name?: string;
  description?: string;
  /** Full copy of every disk (a linked clone, from a template, when false). */
  full?: boolean;
  /** Target node (the source must be on shared storage). */
  target?: string;
  /** Target storage for a full clone. */
  storage?: string;
  pool?: string;
  snapname?: string;
  /** QEMU: target image format for file storage. */
  format?: 'raw' | 'qcow2' | 'vmdk';
  bwlimit?: number;
}

export interface CloneResult {
  vmid: number;
  task: Task;
}

/** What `details()` gathers about one guest. */
export interface GuestDetails<S> {
  node: string;
  vmid: number;
  type: GuestType;
  status: S;
  config: GuestConfig;
  /** From the guest agent (QEMU) or /interfaces (LXC), when the guest runs and can tell. */
  interfaces: readonly GuestNetworkInterface[] | undefined;
}

/** What QEMU and LXC guests share: `/nodes/{node}/{qemu|lxc}/{vmid}`. */
export abstract class GuestApi<S extends QemuStatus | LxcStatus> {
  abstract readonly type: GuestType;
  readonly node: string;
  readonly vmid: number;
  readonly snapshots: SnapshotsApi;
  readonly status: { current: (opts?: CallOptions) => Promise<S> };

  /** Throws InvalidArgumentError (backend 'proxmox') for a node or VMID PVE would refuse. */
  constructor(
    protected readonly ctx: Context,
    node: string,
    vmid: number | string,
    type: GuestType,
  ) {
    this.node = checkNode(node);
    this.vmid = checkGuestVmid(vmid, type);
    this.snapshots = new SnapshotsApi(ctx, type, this.node, this.vmid);
    this.status = { current: async (opts = {}) => this.ctx.t.get<S>(this.p('/status/current'), callOptions(opts)) };
  }

  /** A path below this guest, e.g. `p('/status/start')`. */
  protected p(sub: string): string {
    const base =
      this.type === 'qemu' ? path`/nodes/${this.node}/qemu/${this.vmid}` : path`/nodes/${this.node}/lxc/${this.vmid}`;
    return `${base}${sub}`;
  }

  /** A call that starts a task: only the caller's signal and timeout go along with the parameters. */
  protected async task(
    method: 'POST' | 'PUT' | 'DELETE',
    sub: string,
    opts: CallOptions,
    params?: Record<string, unknown>,
  ): Promise<Task> {
    const upid = await this.ctx.t.request<string>(method, this.p(sub), {
      ...callOptions(opts),
      params: params as never,
    });
    return this.ctx.guestTask(upid, this.node, this.vmid);
  }

  /** The raw config (`GET .../config`), cached per guest. */
  async rawConfig(opts: ReadOptions & { current?: boolean; snapshot?: string } = {}): Promise<RawConfig> {
    opts = options(opts);
    const params = { current: opts.current, snapshot: optionalSnapshotName(opts.snapshot, 'snapshot') };
    return this.ctx.t.get<RawConfig>(this.p('/config'), {
      ...readOptions(opts),
      params,
      cache: this.ctx.guestCache(this.node, this.vmid),
    });
  }

  /** The config, with networks, disks, mount points and cloud-init addresses parsed. */
  async config(opts: ReadOptions & { current?: boolean; snapshot?: string } = {}): Promise<GuestConfig> {
    return parseGuestConfig(this.type, await this.rawConfig(opts));
  }

  /** Grows a disk: `size` is absolute (`40G`) or relative (`+8G`). */
  async resize(disk: string, size: string, opts: CallOptions & { digest?: string } = {}): Promise<Task> {
    opts = options(opts);
    const key = checkDisk(disk, this.type);
    if (typeof size !== 'string' || !/^\+?\d+(\.\d+)?[KMGT]?$/.test(size)) {
      throw new InvalidArgumentError({
        message: `Invalid size ${JSON.stringify(size)}: use 40G or +8G`,
        argument: 'size',
        backend: BACKEND,
      });
    }
    return this.task('PUT', '/resize', opts, { disk: key, size, digest: digestOf(opts.digest) });
  }

  async start(opts: CallOptions = {}): Promise<Task> {
    return this.task('POST', '/status/start', opts);
  }
  /** Hard stop, like pulling the plug. */
  async stop(opts: CallOptions & { skiplock?: boolean; overruleShutdown?: boolean } = {}): Promise<Task> {
    opts = options(opts);
    return this.task('POST', '/status/stop', opts, {
      skiplock: opts.skiplock,
      'overrule-shutdown': opts.overruleShutdown,
    });
  }
  /** Clean shutdown through ACPI (QEMU) or the container's init (LXC). */
  async shutdown(opts: CallOptions & { forceStop?: boolean; timeoutSeconds?: number } = {}): Promise<Task> {
    opts = options(opts);
    return this.task('POST', '/status/shutdown', opts, {
      forceStop: opts.forceStop,
      timeout: optionalInteger(opts.timeoutSeconds, 'timeoutSeconds'),
    });
  }
  async reboot(opts: CallOptions & { timeoutSeconds?: number } = {}): Promise<Task> {
    opts = options(opts);
    return this.task('POST', '/status/reboot', opts, {
      timeout: optionalInteger(opts.timeoutSeconds, 'timeoutSeconds'),
    });
  }
  async resume(opts: CallOptions = {}): Promise<Task> {
    return this.task('POST', '/status/resume', opts);
  }

  /** Destroys the guest. */
  async delete(opts: DeleteOptions = {}): Promise<Task> {
    opts = options(opts);
    const params: Record<string, unknown> = {
      purge: opts.purge,
      'destroy-unreferenced-disks': opts.destroyUnreferencedDisks,
    };
    if (this.type === 'qemu') params.skiplock = opts.skiplock;
    else params.force = opts.force;
    return this.task('DELETE', '', opts, params);
  }

  /** Copies the guest; without `newid` it takes the cluster's next free VMID. */
  async clone(opts: CloneOptions = {}): Promise<CloneResult> {
    opts = options(opts);
    const params: Record<string, unknown> = {
      newid: optionalVmid(opts.newid, 'newid'),
      description: opts.description,
      full: opts.full,
      target: optionalNode(opts.target, 'target'),
      storage: optionalStorage(opts.storage),
      pool: optionalPool(opts.pool),
      snapname: optionalSnapshotName(opts.snapname),
      bwlimit: optionalInteger(opts.bwlimit, 'bwlimit'),
    };
    params[this.type === 'qemu' ? 'name' : 'hostname'] = opts.name;
    if (this.type === 'qemu') params.format = optionalEnum(opts.format, ['raw', 'qcow2', 'vmdk'], 'format');
    const call = callOptions(opts);
    const vmid =
      (params.newid as number | undefined) ?? Number(await this.ctx.t.get<number | string>('/cluster/nextid', call));
    params.newid = vmid;
    const task = await this.task('POST', '/clone', call, params);
    this.ctx.invalidateCluster();
    return { vmid, task };
  }

  /**
   * Checks a migration target before asking PVE to migrate: it must differ from the guest's node,
   * be a member of the cluster and online (`/cluster/status`), and PVE's own precondition check
   * (`GET .../migrate?target=`) must not refuse it (unavailable storage, blocking HA resources).
   * Throws InvalidArgumentError, with nothing sent to migrate, otherwise.
   */
  protected async checkMigrationTarget(target: string, opts: CallOptions): Promise<void> {
    const fail = (message: string) => new InvalidArgumentError({ message, argument: 'target', backend: BACKEND });
    checkNode(target, 'target');
    const what = `${this.type === 'qemu' ? 'VM' : 'CT'} ${this.vmid}`;
    if (target === this.node) throw fail(`${what} is already on ${target}`);
    const status = await this.ctx.t.get<ClusterStatusEntry[]>('/cluster/status', callOptions(opts));
    const entry = status.find((e) => e.type === 'node' && e.name === target);
    if (!entry) throw fail(`Target node ${target} is not a member of this cluster`);
    if (!entry.online) throw fail(`Target node ${target} is offline`);
  }

  /** Turns PVE's reasons for refusing a target node into one sentence. */
  protected refusal(target: string, reason: MigrateRefusal): InvalidArgumentError {
    const parts: string[] = [];
    if (reason.unavailable_storages?.length)
      parts.push(`storage not available there: ${reason.unavailable_storages.join(', ')}`);
    if (reason['blocking-ha-resources']?.length)
      parts.push(`blocked by HA resources: ${reason['blocking-ha-resources'].map((r) => r.sid).join(', ')}`);
    return new InvalidArgumentError({
      message: `PVE refuses to migrate ${this.type === 'qemu' ? 'VM' : 'CT'} ${this.vmid} to ${target}${parts.length ? ` (${parts.join('; ')})` : ''}`,
      argument: 'target',
      backend: BACKEND,
    });
  }

  async vncProxy(opts: CallOptions & { websocket?: boolean } = {}): Promise<VncProxy> {
    opts = options(opts);
    return this.ctx.t.post<VncProxy>(this.p('/vncproxy'), {
      ...callOptions(opts),
      params: { websocket: opts.websocket ?? true },
    });
  }

  /** A terminal (xterm.js) proxy. */
  abstract termProxy(opts?: CallOptions): Promise<TermProxy>;

  /** Opens the VNC websocket for a proxy from `vncProxy()` (a fresh one when none is given). */
  async vncWebSocket(proxy?: VncProxy, opts: CallOptions = {}): Promise<ConsoleConnection> {
    const p = proxy ?? (await this.vncProxy(callOptions(opts)));
    return openConsoleSocket(this.ctx.t, this.p('/vncwebsocket'), p.port, p.ticket, callOptions(opts));
  }

  /** PVE's console page for this guest (noVNC, or xterm.js with `xterm`). */
  consoleUrl(opts: { name?: string; vncticket?: string; xterm?: boolean } = {}): string {
    opts = options(opts);
    return consoleUrl(this.ctx.t.baseUrl, {
      kind: this.type === 'qemu' ? 'kvm' : 'lxc',
      node: this.node,
      vmid: this.vmid,
      name: opts.name,
      vncticket: opts.vncticket,
      xterm: opts.xterm,
    });
  }

  /** Status, parsed config and (for a running guest) its interfaces, fetched in parallel. */
  async details(opts: ReadOptions = {}): Promise<GuestDetails<S>> {
    const read = readOptions(opts);
    const [status, config] = await Promise.all([this.status.current(callOptions(read)), this.config(read)]);
    const interfaces =
      status.status === 'running' ? await this.interfacesIfAvailable(config, callOptions(read)) : undefined;
    return { node: this.node, vmid: this.vmid, type: this.type, status, config, interfaces };
  }

  protected abstract interfacesIfAvailable(
    config: GuestConfig,
    opts: CallOptions,
  ): Promise<GuestNetworkInterface[] | undefined>;

  /** Forgets cached reads about this guest (the seed's RefreshVMData does this, then reads again). */
  invalidate(): void {
    this.ctx.invalidateGuest(this.node, this.vmid);
  }
}

/** Config values to send: an object whose keys are config keys (`net0`, `cores`, `ipconfig1`). */
export function configValues(values: unknown, argument = 'values'): ConfigValues {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new InvalidArgumentError({ message: `${argument} must be an object`, argument, backend: BACKEND });
  }
  for (const key of Object.keys(values)) {
    if (!/^[a-z][a-z0-9_-]*$/i.test(key)) {
      throw new InvalidArgumentError({
        message: `Invalid config key ${JSON.stringify(key.slice(0, 40))}`,
        argument,
        backend: BACKEND,
      });
    }
  }
  return values as ConfigValues;
}

/** The parameters of a config update: the values, the keys to delete, and the digest. */
export function configParams(values: ConfigValues, opts: ConfigUpdateOptions | undefined): Record<string, unknown> {
  opts = options(opts);
  return { ...configValues(values), delete: configKeyList(opts.delete), digest: digestOf(opts.digest) };
}

// A config digest is the SHA1 of the config PVE answered (40 hex digits at most).
function digestOf(digest: unknown): string | undefined {
  if (digest === undefined) return undefined;
  if (typeof digest !== 'string' || !/^[0-9a-f]{1,64}$/i.test(digest)) {
    throw new InvalidArgumentError({ message: 'digest must be hex digits', argument: 'digest', backend: BACKEND });
  }
  return checkText(digest, 'digest', 64);
}
