import { createHash } from 'node:crypto';
import type { Clock } from './clock.js';
import { formatPropertyString, parsePropertyString } from './property-string.js';

/** An error answered the way PVE answers it: status, message (also the reason phrase), errors map. */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

export const fail = (message: string, status = 500): never => {
  throw new PveError(status, message);
};

/**
 * An error PVE raises inside a task's worker rather than in the API call: an asynchronous call
 * (create, POST config) still answers its UPID, and the task ends with this message.
 */
export class WorkerError extends PveError {
  constructor(message: string) {
    super(500, message);
  }
}

/** What a guest's power state did, as the guest runtime (boot, SSH) hears of it. */
export type GuestPowerEvent = 'start' | 'stop' | 'reboot' | 'destroy';

export type ChecksumAlgorithm = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = [
  'md5',
  'sha1',
  'sha224',
  'sha256',
  'sha384',
  'sha512',
];

export type GuestType = 'qemu' | 'lxc';
export type ConfigValue = string | number;

export interface SimNode {
  name: string;
  online: boolean;
  nodeid: number;
  ip: string;
  maxcpu: number;
  maxmem: number;
  startedAt: number;
  config: Record<string, ConfigValue>;
}

export interface StorageDef {
  storage: string;
  type: 'dir' | 'nfs' | 'lvmthin';
  content: string[];
  shared: boolean;
  total: number;
  path?: string;
}

export interface Volume {
  volid: string;
  format: string;
  size: number;
  content: string;
  ctime: number;
  vmid?: number;
  notes?: string;
  /** The disk size an image holds (a qcow2's virtual size); `size` is the file's. */
  virtualSize?: number;
  /** Hex digests of the file's bytes, for a file the simulator received (upload, download). */
  digests?: Partial<Record<ChecksumAlgorithm, string>>;
}

export interface Snapshot {
  name: string;
  description: string;
  snaptime: number;
  vmstate: boolean;
  parent?: string | undefined;
  config: Record<string, ConfigValue>;
  running: boolean;
}

export interface ExecRecord {
  pid: number;
  exitcode: number;
  out: string;
  err: string;
  /** Clock time (ms) at which the process counts as exited. */
  doneAt: number;
}

export interface Guest {
  vmid: number;
  type: GuestType;
  node: string;
  status: 'running' | 'stopped';
  qmpstatus: 'running' | 'paused' | 'stopped';
  config: Record<string, ConfigValue>;
  snapshots: Map<string, Snapshot>;
  /** Name of the snapshot the current state descends from. */
  parent?: string | undefined;
  startedAt: number;
  pool?: string | undefined;
  files: Map<string, string>;
  /**
   * Whether the guest OS runs the QEMU guest agent (answers guest-ping while the VM runs). Kept
   * across restarts; false makes every agent call fail with 'QEMU guest agent is not running'.
   */
  agentRunning: boolean;
  execs: Map<number, ExecRecord>;
  nextPid: number;
  /**
   * True while the guest OS boots after a start or reboot (a VM with a cloud-init drive, for the
   * simulator's `bootDelayMs`): its agent does not answer and its SSH server is not up yet.
   */
  booting?: boolean;
}

export interface Task {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  endtime?: number;
  log: string[];
  endsAt: number;
  run?: (() => void) | undefined;
  failWith?: string | undefined;
  /** Undoes what the task began, when it ends with an error (a create removes its guest). */
  onFail?: (() => void) | undefined;
  /** Stops the task's asynchronous work (a download) when the task is stopped. */
  abort?: (() => void) | undefined;
}

export interface Pool {
  poolid: string;
  comment?: string | undefined;
  members: Set<string>;
}

export interface VncTicket {
  port: number;
  ticket: string;
  user: string;
  kind: 'vnc' | 'term';
  path: string;
  expires: number;
}

const UNITS: Array<[string, number]> = [
  ['T', 1024 ** 4],
  ['G', 1024 ** 3],
  ['M', 1024 ** 2],
  ['K', 1024],
];

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/i.exec(s.trim());
  if (!m) return fail(`unable to parse size '${s}'`);
  const unit = (m[2] ?? '').toUpperCase();
  const factor = UNITS.find(([u]) => u === unit)?.[1] ?? 1;
  return Math.round(Number(m[1]) * factor);
}

export function formatSize(bytes: number): string {
  for (const [u, f] of UNITS) if (bytes >= f && bytes % f === 0) return `${bytes / f}${u}`;
  return String(bytes);
}

export const hex8 = (n: number) => Math.floor(n).toString(16).toUpperCase().padStart(8, '0');

export const QEMU_DISK = /^(scsi|virtio|sata|ide|efidisk|tpmstate|unused)\d+$/;
export const LXC_DISK = /^(rootfs|mp\d+|unused\d+)$/;

export function isDiskKey(type: GuestType, key: string): boolean {
  return type === 'qemu' ? QEMU_DISK.test(key) : LXC_DISK.test(key);
}

export function macFor(vmid: number, index = 0): string {
  const b = [0xbc, 0x24, 0x11, (vmid >> 8) & 0xff, vmid & 0xff, index & 0xff];
  return b.map((x) => x.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

export function ipFor(vmid: number): string {
  return `10.10.${(vmid >> 8) & 0xff}.${vmid & 0xff}`;
}

export interface StateOptions {
  clock: Clock;
  taskDuration: number | ((type: string) => number);
  onTaskScheduled: (task: Task, delayMs: number) => void;
}

/** The simulated cluster: nodes, storage, guests, tasks, pools. Handlers mutate it. */
export class SimState {
  readonly clusterName = 'vmplane-sim';
  readonly nodes = new Map<string, SimNode>();
  readonly storages = new Map<string, StorageDef>();
  /** Volumes by scope: `storage` for shared storage, `node/storage` for local storage. */
  readonly volumes = new Map<string, Map<string, Volume>>();
  readonly guests = new Map<number, Guest>();
  readonly tasks = new Map<string, Task>();
  readonly taskOrder: Task[] = [];
  readonly pools = new Map<string, Pool>();
  readonly vncTickets = new Map<string, VncTicket>();
  /** Pending task failures by task type (fault injection). */
  readonly taskFailures = new Map<string, string[]>();
  /** The failure for the next task the current request starts (a `failTask` fault rule). */
  requestTaskFailure: string | undefined;
  private readonly guestListeners: Array<(g: Guest, event: GuestPowerEvent) => void> = [];
  private readonly running = new Set<Task>();
  private pidCounter = 4000;
  private vncPort = 5900;

  constructor(private readonly opts: StateOptions) {}

  now(): number {
    return this.opts.clock.now();
  }

  nowS(): number {
    return Math.floor(this.opts.clock.now() / 1000);
  }

  // --- nodes ---------------------------------------------------------------------------------

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n)
      return fail(
        `hostname lookup '${name}' failed - failed to get address info for: ${name}: Name or service not known`,
      );
    return n;
  }

  /** The node a request is "connected to" (the first online one). */
  localNode(): SimNode {
    for (const n of this.nodes.values()) if (n.online) return n;
    return this.nodes.values().next().value as SimNode;
  }

  // --- storage -------------------------------------------------------------------------------

  scopeKey(node: string, storage: string): string {
    const def = this.storages.get(storage);
    return def?.shared ? storage : `${node}/${storage}`;
  }

  volumesOf(node: string, storage: string): Map<string, Volume> {
    const key = this.scopeKey(node, storage);
    let m = this.volumes.get(key);
    if (!m) {
      m = new Map();
      this.volumes.set(key, m);
    }
    return m;
  }

  storage(name: string): StorageDef {
    const s = this.storages.get(name);
    if (!s) return fail(`storage '${name}' does not exist`);
    return s;
  }

  findVolume(node: string, volid: string): Volume | undefined {
    const storage = volid.split(':')[0] ?? '';
    if (!this.storages.has(storage)) return undefined;
    return this.volumesOf(node, storage).get(volid);
  }

  storageUsage(node: string, storage: string): { used: number; total: number } {
    const def = this.storage(storage);
    let used = 0;
    for (const v of this.volumesOf(node, storage).values()) used += v.size;
    return { used, total: def.total };
  }

  /** Allocates a new guest disk volume and returns its volid. */
  allocDisk(
    node: string,
    storage: string,
    vmid: number,
    size: number,
    opts: { format?: string; base?: boolean; content?: string } = {},
  ): string {
    const def = this.storage(storage);
    const content = opts.content ?? 'images';
    if (!def.content.includes(content)) fail(`storage '${storage}' does not support content-type '${content}'`);
    const format = opts.format ?? (def.type === 'lvmthin' ? 'raw' : 'raw');
    const vols = this.volumesOf(node, storage);
    let n = 0;
    const prefix = opts.base ? 'base' : 'vm';
    const name = (i: number) =>
      def.type === 'lvmthin'
        ? `${storage}:${prefix}-${vmid}-disk-${i}`
        : `${storage}:${vmid}/${prefix}-${vmid}-disk-${i}.${format}`;
    while (vols.has(name(n))) n++;
    const volid = name(n);
    vols.set(volid, { volid, format, size, content, ctime: this.nowS(), vmid });
    return volid;
  }

  // --- guests --------------------------------------------------------------------------------

  onGuestPower(listener: (g: Guest, event: GuestPowerEvent) => void): void {
    this.guestListeners.push(listener);
  }

  emitGuestPower(g: Guest, event: GuestPowerEvent): void {
    for (const l of this.guestListeners) l(g, event);
  }

  guest(node: string, vmid: number, type: GuestType): Guest {
    const g = this.guests.get(vmid);
    if (!g || g.node !== node || g.type !== type) {
      const dir = type === 'qemu' ? 'qemu-server' : 'lxc';
      return fail(`Configuration file 'nodes/${node}/${dir}/${vmid}.conf' does not exist`);
    }
    return g;
  }

  nextVmid(from = 100): number {
    let id = from;
    while (this.guests.has(id)) id++;
    return id;
  }

  digest(config: Record<string, ConfigValue>): string {
    return createHash('sha1').update(JSON.stringify(config)).digest('hex');
  }

  diskEntries(g: Guest): Array<{ key: string; volid: string; props: Record<string, string> }> {
    const out: Array<{ key: string; volid: string; props: Record<string, string> }> = [];
    const defaultKey = g.type === 'qemu' ? 'file' : 'volume';
    for (const [key, value] of Object.entries(g.config)) {
      if (!isDiskKey(g.type, key)) continue;
      const props = parsePropertyString(String(value), defaultKey);
      const volid = props[defaultKey] ?? '';
      if (volid === 'none' || props.media === 'cdrom' || !volid.includes(':')) continue;
      out.push({ key, volid, props });
    }
    return out;
  }

  /** Volumes of a guest that live on non-shared storage. */
  localDisks(g: Guest): string[] {
    return this.diskEntries(g)
      .map((d) => d.volid)
      .filter((v) => !this.storages.get(v.split(':')[0] ?? '')?.shared);
  }

  /** Turns `STORAGE:SIZE` (or `STORAGE:0,import-from=...`) disk specs into allocated volumes. */
  allocateDiskSpec(g: Guest, key: string, value: string): string {
    const defaultKey = g.type === 'qemu' ? 'file' : 'volume';
    const props = parsePropertyString(value, defaultKey);
    const file = props[defaultKey] ?? '';
    const ci = /^([a-z][a-z0-9\-_.]*[a-z0-9]):cloudinit$/i.exec(file);
    if (ci && g.type === 'qemu') {
      // STORAGE:cloudinit makes the cloud-init drive.
      const storage = ci[1] as string;
      const def = this.storage(storage);
      const volid =
        def.type === 'lvmthin'
          ? `${storage}:vm-${g.vmid}-cloudinit`
          : `${storage}:${g.vmid}/vm-${g.vmid}-cloudinit.qcow2`;
      this.volumesOf(g.node, storage).set(volid, {
        volid,
        format: 'qcow2',
        size: 4 * 1024 ** 2,
        content: 'images',
        ctime: this.nowS(),
        vmid: g.vmid,
      });
      delete props[defaultKey];
      return formatPropertyString({ [defaultKey]: volid, ...props, media: 'cdrom' }, defaultKey);
    }
    const m = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)$/i.exec(file);
    if (!m || props.media === 'cdrom') {
      if (file.includes(':') && file !== 'none' && props.media !== 'cdrom' && !this.findVolume(g.node, file))
        fail(`volume '${file}' does not exist`);
      return value;
    }
    const storage = m[1] as string;
    let size = Number(m[2]) * 1024 ** 3;
    let format = props.format;
    const importFrom = props['import-from'];
    if (importFrom !== undefined) {
      // qemu-server takes the source's size whatever size was asked for, and keeps its format
      // where the target storage can hold it (resolve_dst_disk_format).
      if (importFrom.startsWith('/')) size = size || 2 * 1024 ** 3;
      else {
        const cannot = (why: string) => new WorkerError(`cannot import from '${importFrom}' - ${why}`);
        const src = this.findVolume(g.node, importFrom);
        if (!src) throw cannot(`could not get size of ${importFrom}`);
        if (/[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|vmdk))?$/.test(importFrom))
          throw cannot('cannot import from cloudinit disk');
        size = src.virtualSize ?? src.size;
        const fileBased = this.storage(storage).type !== 'lvmthin';
        if (format === undefined && fileBased && ['raw', 'qcow2', 'vmdk'].includes(src.format)) format = src.format;
      }
    } else if (size === 0 && !/^(efidisk|tpmstate)/.test(key)) {
      fail(`${key}: size 0 is only allowed together with import-from`);
    }
    if (size === 0) size = 4 * 1024 ** 2;
    const content = g.type === 'qemu' ? 'images' : 'rootdir';
    const volid = this.allocDisk(g.node, storage, g.vmid, size, { ...(format ? { format } : {}), content });
    delete props['import-from'];
    delete props[defaultKey];
    props.size = formatSize(size);
    return formatPropertyString({ [defaultKey]: volid, ...props }, defaultKey);
  }

  removeGuestVolumes(g: Guest, unreferenced: boolean): void {
    const referenced = new Set(this.diskEntries(g).map((d) => d.volid));
    for (const [scope, vols] of this.volumes) {
      const node = scope.includes('/') ? scope.split('/')[0] : undefined;
      if (node !== undefined && node !== g.node) continue;
      for (const [volid, v] of vols) {
        if (referenced.has(volid) || (unreferenced && v.vmid === g.vmid && v.content !== 'backup')) vols.delete(volid);
      }
    }
  }

  /** Moves a guest's local volumes to another node (migration), optionally mapping storages. */
  moveLocalVolumes(g: Guest, target: string, map: (storage: string) => string): void {
    for (const d of this.diskEntries(g)) {
      const storage = d.volid.split(':')[0] ?? '';
      const def = this.storages.get(storage);
      if (!def || def.shared) continue;
      const src = this.volumesOf(g.node, storage);
      const vol = src.get(d.volid);
      if (!vol) continue;
      src.delete(d.volid);
      const newStorage = map(storage);
      const newVolid = `${newStorage}:${d.volid.slice(storage.length + 1)}`;
      this.volumesOf(target, newStorage).set(newVolid, { ...vol, volid: newVolid });
      if (newVolid !== d.volid) {
        const defaultKey = g.type === 'qemu' ? 'file' : 'volume';
        g.config[d.key] = formatPropertyString({ ...d.props, [defaultKey]: newVolid }, defaultKey);
      }
    }
  }

  // --- tasks ---------------------------------------------------------------------------------

  makeUpid(
    node: string,
    type: string,
    id: string,
    user: string,
  ): { upid: string; pid: number; pstart: number; starttime: number } {
    const pid = ++this.pidCounter;
    const pstart = 1_000_000 + pid * 7;
    const starttime = this.nowS();
    const upid = `UPID:${node}:${hex8(pid)}:${hex8(pstart)}:${hex8(starttime)}:${type}:${id}:${user}:`;
    return { upid, pid, pstart, starttime };
  }

  /**
   * Starts a task. `run` applies the task's effects when it ends; throwing a PveError from it
   * makes the task end with that message as exitstatus. A task with `work` (a download) ends when
   * that work settles rather than after the task duration: its result is the task's `run`, its
   * rejection the exitstatus, and stopping the task aborts its signal.
   */
  startTask(
    node: string,
    type: string,
    id: string | number,
    user: string,
    run?: () => void,
    opts: { log?: string[]; duration?: number; work?: (task: Task, signal: AbortSignal) => Promise<() => void> } = {},
  ): Task {
    const { upid, pid, pstart, starttime } = this.makeUpid(node, type, String(id), user);
    const d = this.opts.taskDuration;
    const duration = opts.duration ?? (typeof d === 'function' ? d(type) : d);
    const task: Task = {
      upid,
      node,
      pid,
      pstart,
      starttime,
      type,
      id: String(id),
      user,
      status: 'running',
      log: opts.log ?? [],
      endsAt: this.now() + duration,
      run,
    };
    const failures = this.taskFailures.get(type) ?? this.taskFailures.get('*');
    if (failures && failures.length > 0) task.failWith = failures.shift();
    if (this.requestTaskFailure !== undefined) {
      task.failWith = this.requestTaskFailure;
      this.requestTaskFailure = undefined;
    }
    this.tasks.set(upid, task);
    this.running.add(task);
    this.taskOrder.push(task);
    if (this.taskOrder.length > 5000) {
      const old = this.taskOrder.shift();
      if (old) this.tasks.delete(old.upid);
    }
    // An injected failure skips the work, as it skips `run`: the task just ends with it.
    if (opts.work && task.failWith === undefined) {
      task.endsAt = Number.POSITIVE_INFINITY;
      const controller = new AbortController();
      task.abort = () => controller.abort();
      opts.work(task, controller.signal).then(
        (commit) => {
          task.run = commit;
          this.finishTask(task);
        },
        (e: unknown) => this.finishTask(task, e instanceof Error ? e.message.trim() : String(e)),
      );
      return task;
    }
    this.opts.onTaskScheduled(task, duration);
    if (duration <= 0) this.finishTask(task);
    return task;
  }

  finishTask(task: Task, forced?: string): void {
    if (task.status !== 'running') return;
    this.running.delete(task);
    task.abort?.();
    task.abort = undefined;
    let exit = 'OK';
    if (forced) exit = forced;
    else if (task.failWith) exit = task.failWith;
    else {
      try {
        task.run?.();
      } catch (e) {
        exit = e instanceof Error ? e.message.trim() : String(e);
      }
    }
    task.status = 'stopped';
    task.exitstatus = exit;
    task.endtime = Math.max(task.starttime, this.nowS());
    task.log.push(exit === 'OK' ? 'TASK OK' : `TASK ERROR: ${exit}`);
    task.run = undefined;
    // PVE counts a task that ended with warnings as done.
    if (exit !== 'OK' && !exit.startsWith('WARNINGS')) task.onFail?.();
    task.onFail = undefined;
  }

  /** Stops the asynchronous work of every running task (the simulator is closing). */
  abortWork(): void {
    for (const t of this.running) {
      t.abort?.();
      t.abort = undefined;
    }
  }

  /** Finishes every task whose time has come. Cheap; called on every request. */
  tick(): void {
    const now = this.now();
    if (this.running.size === 0) return;
    for (const t of [...this.running]) {
      if (t.endsAt <= now) this.finishTask(t);
    }
  }

  task(upid: string): Task {
    const t = this.tasks.get(upid);
    if (!t) return fail(`no such task`);
    return t;
  }

  // --- consoles ------------------------------------------------------------------------------

  newVncTicket(kind: 'vnc' | 'term', user: string, path: string, ticket: string): VncTicket {
    this.vncPort = this.vncPort >= 5999 ? 5900 : this.vncPort + 1;
    const t: VncTicket = { port: this.vncPort, ticket, user, kind, path, expires: this.now() + 10_000 + 3600_000 };
    this.vncTickets.set(`${this.vncPort}`, t);
    return t;
  }
}
