import type { CallOptions } from '@vmplane/common';
import type { StageContext } from '../engine/stage.js';
import type { InstanceState, ProviderRef, ProviderType } from '../model/instance.js';

/**
 * What a provider can do. The server asks before it acts: a capability a provider lacks is an
 * `UnsupportedError` naming it, never a backend error half-way through.
 */
export const CAPABILITIES = [
  'containers',
  'vms',
  'install',
  'exec',
  'files',
  'console-log',
  'stats',
  'snapshots',
  'snapshot-restore',
  'standby',
  'fork',
  'resize-cpu',
  'resize-memory',
  'grow-disk',
  'migrate',
  'events',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** A guest as its backend shows it now: what the store mirrors and reconciles against. */
export interface ObservedGuest {
  ref: ProviderRef;
  name: string;
  state: InstanceState;
  /** The backend's own word for the state (`Running`, `running`, `Frozen`, ...), for state_error and logs. */
  backendStatus: string;
  ipv4?: string;
  vcpus?: number;
  memoryBytes?: number;
  /** Tags the backend keeps itself (LXD user.* keys vmplane wrote, Proxmox tags). */
  tags?: Record<string, string>;
}

/** A change the backend reported by itself (LXD's lifecycle events); absent ones are found by reconcile. */
export interface GuestChange {
  kind: 'created' | 'updated' | 'deleted';
  ref: ProviderRef;
  /** The guest after the change, when the provider knows it without another call. */
  guest?: ObservedGuest;
  /** The backend's own name for what happened (LXD's `instance-stopped`), for logs and tests. */
  event?: string;
}

export interface NodeCapacity {
  name: string;
  online: boolean;
  cpus?: number;
  cpuUsage?: number;
  memoryBytes?: number;
  memoryUsedBytes?: number;
  diskBytes?: number;
  diskUsedBytes?: number;
}

/** What is taken on the backend, so that allocation never hands out an id or address a guest holds. */
export interface UsedResources {
  vmids: ReadonlySet<number>;
  ipv4: ReadonlySet<string>;
}

/** hypeman's `PathInfo`. */
export interface PathInfo {
  exists: boolean;
  is_dir?: boolean;
  is_file?: boolean;
  is_symlink?: boolean;
  link_target?: string;
  mode?: number;
  size?: number;
  error?: string;
}

export interface GuestStats {
  cpuSeconds: number;
  memoryRssBytes: number;
  memoryVmsBytes: number;
  networkRxBytes: number;
  networkTxBytes: number;
  allocatedVcpus: number;
  allocatedMemoryBytes: number;
}

export interface ExecRequest {
  command: readonly string[];
  env?: Record<string, string>;
  cwd?: string;
  tty?: boolean;
  rows?: number;
  cols?: number;
  /** Given whole (secrets for `chpasswd`, say): written, then stdin is closed. */
  stdin?: string | Uint8Array;
  /** Interactive: stdin comes from the caller over time. */
  interactive?: boolean;
}

/**
 * A running command. Output streams own the connection: leaving a `for await` early ends the
 * session. `exit` settles once, with the exit code, or rejects with a typed error when the
 * command could not run or the connection was cut (never a made-up exit code).
 */
export interface GuestProcess {
  readonly stdout: AsyncIterable<Uint8Array>;
  /** Empty for a TTY session: the terminal merges the two. */
  readonly stderr: AsyncIterable<Uint8Array>;
  write(data: string | Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  resize(rows: number, cols: number): Promise<void>;
  signal(signal: number): Promise<void>;
  readonly exit: Promise<number>;
  close(): void;
}

/** What an install asks for, after the server has clamped and defaulted it. */
export interface InstallSpec {
  /** The instance's name (a go-pve-qemu install's `name`, or `vm-<id>`). */
  name: string;
  /** Provider-specific image reference (`debian-12`, `local:vztmpl/...`, `images:debian/12`, an LXD alias). */
  image: string;
  kind: 'container' | 'vm';
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  /** The node to migrate to after creation (go-pve-qemu's `node`), when it differs from where it is made. */
  targetNode?: string;
  user?: string;
  /** A secret: never logged, never journalled, passed to guests on stdin. */
  password?: string;
  sshPublicKey?: string;
  env?: Record<string, string>;
  tags?: Record<string, string>;
  /** hypeman's entrypoint/cmd, where the provider runs one. */
  command?: readonly string[];
  /** Readiness by SSH (Proxmox default), the guest agent, or exec (LXD). */
  readiness?: 'ssh' | 'agent' | 'exec';
}

/**
 * The stages an install runs, by go-pve-qemu's names, in order. A provider implements each; one
 * that does not apply returns `{ skipped: true }` and the engine reports it as success "skipped".
 */
export type InstallStageName =
  | 'preparation > checking VMID'
  | 'preparation > assigning IP'
  | 'preparation > validating CPU and RAM'
  | 'preparation > validating disk size'
  | 'preparation > setting default config values'
  | 'preparation > checking storage pool'
  | 'OS preparation > getting OS image'
  | 'OS preparation > validating OS image URL'
  | 'OS preparation > downloading OS image'
  | 'SSH preparation > checking SSH key'
  | 'VM creation > creating VM'
  | 'VM creation > importing disk image'
  | 'VM initialization > initializing configuration'
  | 'VM initialization > migrating VM'
  | 'VM initialization > waiting for ready'
  | 'VM initialization > SSH initialization'
  | 'VM initialization > rebooting VM'
  | 'VM initialization > finalizing';

export interface StageOutcome {
  skipped?: boolean;
  /** Replaces the stage's name in its success message (`OS preparation > using OS image`). */
  renamedTo?: string;
  message?: string;
}

/** One provider's install: a step per stage, sharing state through `InstallState`. */
export type InstallPlan = Record<InstallStageName, (ctx: StageContext, state: InstallState) => Promise<StageOutcome>>;

/** What stages learn and later stages read. Everything here is journal-safe: no secrets. */
export interface InstallState {
  vmid?: number;
  ipv4?: string;
  ref?: ProviderRef;
  node?: string;
  storage?: string;
  imageVolume?: string;
  imageUrl?: string;
}

/**
 * An undo, by kind, as the provider registered it: the payload is persisted before the step acts,
 * so the same handler runs after a crash. Handlers are idempotent: undoing what is already gone
 * succeeds.
 */
export type UndoHandler = (payload: Record<string, unknown>, opts: CallOptions) => Promise<void>;

/** One interface over every backend. Every call takes `{ signal, timeout }`. */
export interface Provider {
  /** The configured name (`lxd`, `lab`). */
  readonly name: string;
  readonly type: ProviderType;
  readonly capabilities: ReadonlySet<Capability>;
  /** Undo handlers by kind, for the engine and for crash recovery. */
  readonly undo: Readonly<Record<string, UndoHandler>>;

  probe(opts?: CallOptions): Promise<{ reachable: boolean; version?: string; error?: string }>;
  nodes(opts?: CallOptions): Promise<NodeCapacity[]>;
  /** Every guest vmplane may manage, as the backend shows it now. */
  list(opts?: CallOptions): Promise<ObservedGuest[]>;
  get(ref: ProviderRef, opts?: CallOptions): Promise<ObservedGuest | undefined>;
  /**
   * The backend's own change feed, where it has one (LXD lifecycle events). Ends when `signal`
   * aborts; reconnects itself. Providers without one return undefined and rely on reconcile.
   */
  watch?(signal: AbortSignal): AsyncIterable<GuestChange>;
  used(opts?: CallOptions): Promise<UsedResources>;

  install(spec: InstallSpec): InstallPlan;

  start(ref: ProviderRef, opts?: CallOptions): Promise<void>;
  /** `force`: at once (qm stop --skiplock, lxc stop --force); otherwise a clean shutdown. */
  stop(ref: ProviderRef, opts?: CallOptions & { force?: boolean }): Promise<void>;
  reboot(ref: ProviderRef, opts?: CallOptions): Promise<void>;
  /** Stops and deletes the guest and its disks. Deleting what is gone succeeds. */
  destroy(ref: ProviderRef, opts?: CallOptions): Promise<void>;
  /** Resolves when the guest takes commands (exec, SSH or the agent answers), rejects on the deadline. */
  waitReady(ref: ProviderRef, opts: CallOptions & { readiness?: InstallSpec['readiness'] }): Promise<void>;

  exec?(ref: ProviderRef, request: ExecRequest, opts?: CallOptions): Promise<GuestProcess>;
  stat?(ref: ProviderRef, path: string, opts?: CallOptions): Promise<PathInfo>;
  readFile?(ref: ProviderRef, path: string, opts?: CallOptions): Promise<AsyncIterable<Uint8Array>>;
  writeFile?(
    ref: ProviderRef,
    path: string,
    data: AsyncIterable<Uint8Array> | Uint8Array,
    opts?: CallOptions & { mode?: number },
  ): Promise<void>;
  consoleLog?(ref: ProviderRef, opts: CallOptions & { follow?: boolean }): AsyncIterable<string>;
  stats?(ref: ProviderRef, opts?: CallOptions): Promise<GuestStats>;
  setCpu?(ref: ProviderRef, vcpus: number, opts?: CallOptions): Promise<void>;
  setMemory?(ref: ProviderRef, memoryMiB: number, opts?: CallOptions): Promise<void>;
  /** Grows the root disk by `byGiB`; never shrinks. */
  growDisk?(ref: ProviderRef, byGiB: number, opts?: CallOptions): Promise<void>;
  migrate?(ref: ProviderRef, node: string, opts?: CallOptions): Promise<ProviderRef>;
  snapshot?(ref: ProviderRef, name: string, opts?: CallOptions & { stateful?: boolean }): Promise<void>;
  restoreSnapshot?(ref: ProviderRef, name: string, opts?: CallOptions): Promise<void>;
  deleteSnapshot?(ref: ProviderRef, name: string, opts?: CallOptions): Promise<void>;
  standby?(ref: ProviderRef, opts?: CallOptions): Promise<void>;
  resume?(ref: ProviderRef, opts?: CallOptions): Promise<void>;
  /**
   * A copy of the guest named `name`. `vmid`: the id core reserved for the copy, for backends
   * whose ids are cluster-wide (Proxmox); others ignore it.
   */
  fork?(ref: ProviderRef, name: string, opts?: CallOptions & { vmid?: number }): Promise<ProviderRef>;
}
