import type { CallOptions } from '@vmplane/common';
import type { BusListener } from '../engine/bus.js';
import type { Started } from '../engine/runner.js';
import type { OperationEvent } from '../engine/stage.js';
import type { Instance, InstanceState } from '../model/instance.js';
import type {
  Capability,
  ExecRequest,
  GuestProcess,
  GuestStats,
  InstallSpec,
  NodeCapacity,
  PathInfo,
} from '../providers/provider.js';
import type { InstanceFilter, OperationRecord, OperationStatus, Store } from '../store/contract.js';

/** An install as a route asks for it: the spec after clamping, where, and how to dedupe it. */
export interface InstallRequest {
  provider?: string;
  spec: InstallSpec;
  /** go-pve-qemu's explicit `id`. */
  requestedId?: number;
  idempotency?: { key: string; scope: string; bodyHash: string };
  /** hypeman's create fields kept on the record as given. */
  record?: Partial<Pick<Instance, 'env' | 'tags' | 'image' | 'size' | 'vcpus' | 'expires_at'>>;
  /** go-pve-qemu's summary events after success (`[*] VMID: ...`). */
  summary?: boolean;
}

/** What `/v1/providers` shows. */
export interface ProviderInfo {
  name: string;
  type: string;
  capabilities: Capability[];
  reachable: boolean;
  version?: string;
  error?: string;
  default: boolean;
}

/** Lifecycle operations that stream (go-pve-qemu's start and reboot, `set/node`) or end at once. */
export type LifecycleAction = 'start' | 'stop' | 'shutdown' | 'reboot' | 'destroy' | 'standby' | 'restore';

/**
 * The control plane as the server and the CLI use it. Reads come from the store; changes run as
 * operations through the engine, journalled, with undo.
 */
export interface ControlPlaneApi {
  readonly store: Store;

  listInstances(filter?: InstanceFilter): Promise<Instance[]>;
  /** hypeman's lookup: id, then exact name, then unique id prefix; NotFoundInStoreError or 409 `ambiguous`. */
  getInstance(idOrName: string): Promise<Instance>;

  install(req: InstallRequest): Promise<Started>;
  /**
   * hypeman's create: starts the install and resolves with the instance once it exists on the
   * backend (state Created or Initializing), or rejects with the install's error.
   */
  createInstance(req: InstallRequest): Promise<{ instance: Instance; operation: OperationRecord }>;

  /** Runs a lifecycle action as an operation; checks the state table first (409 `invalid_state`). */
  act(idOrName: string, action: LifecycleAction, opts?: { force?: boolean; waitReady?: boolean }): Promise<Started>;
  /** go-pve-qemu's set/cpu, set/memory, set/disk (grow by), set/node. */
  resize(
    idOrName: string,
    change: { vcpus?: number; memoryMiB?: number; growDiskGiB?: number; node?: string },
  ): Promise<Started>;
  /** hypeman's fork: a copy under a new name (LXD copy, Proxmox full clone), with its own id. */
  fork(
    idOrName: string,
    req: { name: string; fromRunning?: boolean; targetState?: InstanceState },
  ): Promise<{ instance: Instance; operation: OperationRecord }>;
  /** Takes (`stateful`: with memory where the backend can), restores or deletes a snapshot. */
  snapshot(
    idOrName: string,
    action: 'create' | 'restore' | 'delete',
    name: string,
    opts?: { stateful?: boolean },
  ): Promise<Started>;
  updateInstance(
    idOrName: string,
    change: { env?: Record<string, string>; expires_at?: string | null },
  ): Promise<Instance>;

  /** Resolves when the instance reaches `state`, from state changes (no polling), or at the timeout. */
  waitForState(
    idOrName: string,
    state: InstanceState,
    opts: CallOptions & { timeoutMs: number },
  ): Promise<{ state: InstanceState; timed_out: boolean; state_error?: string }>;

  exec(idOrName: string, request: ExecRequest, opts?: CallOptions): Promise<GuestProcess>;
  stat(idOrName: string, path: string, opts?: CallOptions): Promise<PathInfo>;
  readFile(idOrName: string, path: string, opts?: CallOptions): Promise<AsyncIterable<Uint8Array>>;
  writeFile(idOrName: string, path: string, data: Uint8Array, opts?: CallOptions & { mode?: number }): Promise<void>;
  stats(idOrName: string, opts?: CallOptions): Promise<GuestStats>;
  /** The guest's console (`app`), where the provider has one. */
  consoleLog(idOrName: string, opts: CallOptions & { follow?: boolean }): AsyncIterable<string>;

  getOperation(id: string): Promise<OperationRecord>;
  listOperations(filter?: {
    status?: OperationStatus;
    instanceId?: string;
    limit?: number;
  }): Promise<OperationRecord[]>;
  cancelOperation(id: string): Promise<OperationRecord>;
  /** The journal after `afterSeq`, then live events until the operation ends (or `signal` aborts). */
  operationEvents(
    id: string,
    opts: { afterSeq?: number; signal?: AbortSignal; follow?: boolean },
  ): AsyncIterable<OperationEvent>;
  /** Every operation event and instance change, live. */
  subscribe(listener: BusListener): () => void;

  providers(opts?: CallOptions): Promise<ProviderInfo[]>;
  nodes(opts?: CallOptions): Promise<Array<NodeCapacity & { provider: string }>>;
}
