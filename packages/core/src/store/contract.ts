import type { OperationEvent, StageStatus } from '../engine/stage.js';
import type { Instance, InstanceState } from '../model/instance.js';

/**
 * The durable state, as the rest of core sees it. One implementation over Kysely (SQLite now,
 * PostgreSQL next): every method is one transaction, and nothing here is SQLite-specific.
 * Ids are opaque strings; times are ISO-8601 strings.
 */
export interface Store {
  readonly instances: InstanceStore;
  readonly operations: OperationStore;
  readonly allocations: AllocationStore;
  readonly undo: UndoStore;
  readonly tokens: TokenStore;
  readonly idempotency: IdempotencyStore;
  close(): Promise<void>;
}

export interface InstanceFilter {
  state?: InstanceState;
  provider?: string;
  /** Every pair must match. */
  tags?: Record<string, string>;
}

export interface InstanceStore {
  /** Inserts; a name taken already is an `AlreadyExistsError`. */
  insert(instance: Instance): Promise<void>;
  /** By id, or by name when no id matches (hypeman's lookup). */
  find(idOrName: string): Promise<Instance | undefined>;
  /** By the backend's reference (provider name plus ref), for events and reconcile. */
  findByRef(provider: string, refKey: string): Promise<Instance | undefined>;
  list(filter?: InstanceFilter): Promise<Instance[]>;
  /**
   * Applies a partial change; returns the instance after it, or undefined when it is gone. A key
   * given as `undefined` clears that optional field (`state_error` after a recovery); required
   * fields given as `undefined` are left as they are.
   */
  update(id: string, change: InstanceChange): Promise<Instance | undefined>;
  delete(id: string): Promise<boolean>;
}

/** A partial instance for `update`; `undefined` clears an optional field. */
export type InstanceChange = { [K in keyof Omit<Instance, 'id'>]?: Instance[K] | undefined };

/** `refKey` of a ref: one string per guest, stable, for lookups (`lxd/<project>/<name>`, `proxmox/<vmid>`). */
export type RefKey = string;

export type OperationStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface OperationRecord {
  id: string;
  /** `install`, `start`, `reboot`, `migrate`, `create`, `delete`, ... */
  kind: string;
  status: OperationStatus;
  /** The instance it works on, once known. */
  instanceId?: string;
  provider?: string;
  /** The request, journal-safe (secrets removed by the caller). */
  request: Record<string, unknown>;
  /** Set when the operation ends badly. */
  error?: { code: string; message: string };
  result?: Record<string, unknown>;
  cancelRequested: boolean;
  createdAt: string;
  updatedAt: string;
  endedAt?: string;
}

export interface NewEvent {
  step: string;
  status: StageStatus;
  message: string;
  elapsed?: number;
  vmId?: number;
  ip?: string;
}

/** A partial operation for `update`. */
export type OperationChange = {
  [K in 'status' | 'instanceId' | 'provider' | 'error' | 'result' | 'endedAt']?: OperationRecord[K] | undefined;
};

export interface OperationStore {
  /** `id` lets the caller claim an idempotency key for the operation before it exists. */
  create(op: {
    id?: string;
    kind: string;
    request: Record<string, unknown>;
    instanceId?: string;
    provider?: string;
  }): Promise<OperationRecord>;
  get(id: string): Promise<OperationRecord | undefined>;
  list(filter?: { status?: OperationStatus; instanceId?: string; limit?: number }): Promise<OperationRecord[]>;
  /** Operations a previous process left `pending` or `running`: what recovery undoes or resumes. */
  unfinished(): Promise<OperationRecord[]>;
  /** A key given as `undefined` clears that optional field; `status: undefined` leaves the status. */
  update(id: string, change: OperationChange): Promise<OperationRecord | undefined>;
  requestCancel(id: string): Promise<OperationRecord | undefined>;
  /** Appends to the journal, numbering the event (1, 2, ...) in the same transaction. */
  appendEvent(operationId: string, event: NewEvent): Promise<OperationEvent>;
  /** The journal after `afterSeq` (0: from the start), in order. */
  events(operationId: string, afterSeq?: number): Promise<OperationEvent[]>;
}

/**
 * An allocation holds a value (a VMID, an IPv4 address) for an owner (an operation, then the
 * instance). `pool` names the space (`vmid`, `ipv4:10.0.0.0/24`): a value is held by at most one
 * owner per pool, across processes (a unique index, not a check).
 */
export interface Allocation {
  pool: string;
  value: string;
  owner: string;
  createdAt: string;
}

/** One value of one pool. */
export interface AllocationKey {
  pool: string;
  value: string;
}

export interface AllocationStore {
  /**
   * In one transaction: the first candidate that is neither allocated nor in `taken` (what the
   * backend holds now) is allocated to `owner`. Undefined when every candidate is out.
   */
  allocate(req: {
    pool: string;
    owner: string;
    candidates: Iterable<string>;
    taken?: ReadonlySet<string>;
  }): Promise<Allocation | undefined>;
  /**
   * Allocates exactly this value (go-pve-qemu's explicit `id`); false when it is in `taken` or
   * held by another owner. True, changing nothing, when `owner` holds it already.
   */
  claim(req: { pool: string; owner: string; value: string; taken?: ReadonlySet<string> }): Promise<boolean>;
  /**
   * Values that only make sense together (a VMID and the address derived from it), in one
   * transaction: the first group none of whose values is held is allocated to `owner`, all of it.
   * Undefined when no group is free. The caller leaves out groups the backend holds.
   */
  allocateGroup(req: {
    owner: string;
    candidates: Iterable<readonly AllocationKey[]>;
  }): Promise<Allocation[] | undefined>;
  /** Claims every value of `values` for `owner`, or none: false when another owner holds any of them. */
  claimGroup(req: { owner: string; values: readonly AllocationKey[] }): Promise<boolean>;
  /** Moves every allocation of `from` to `to` (an operation's to its instance). */
  transfer(from: string, to: string): Promise<number>;
  release(pool: string, value: string, owner: string): Promise<boolean>;
  /** Releases what `owner` holds, in `pools` only when given. */
  releaseOwner(owner: string, pools?: readonly string[]): Promise<number>;
  list(filter?: { pool?: string; owner?: string }): Promise<Allocation[]>;
}

export interface UndoIntent {
  id: number;
  operationId: string;
  /** Order of registration: undo runs in reverse. */
  seq: number;
  kind: string;
  payload: Record<string, unknown>;
  createdAt: string;
}

export interface UndoStore {
  push(operationId: string, kind: string, payload: Record<string, unknown>): Promise<UndoIntent>;
  update(id: number, payload: Record<string, unknown>): Promise<void>;
  remove(id: number): Promise<void>;
  /** Pending intents of an operation, newest first (the order to undo in). */
  pending(operationId: string): Promise<UndoIntent[]>;
  clear(operationId: string): Promise<number>;
}

export type TokenScope = 'read' | 'write' | 'admin';

export interface TokenRecord {
  id: string;
  name: string;
  scope: TokenScope;
  createdAt: string;
  lastUsedAt?: string;
  revokedAt?: string;
}

export interface TokenStore {
  /** Returns the secret once; only its hash is stored. */
  create(req: { scope: TokenScope; name?: string }): Promise<{ token: string; record: TokenRecord }>;
  /** The token's record when the secret is valid and not revoked. Reads the database every time. */
  verify(secret: string): Promise<TokenRecord | undefined>;
  list(): Promise<TokenRecord[]>;
  revoke(idOrName: string): Promise<boolean>;
}

export interface IdempotencyStore {
  /**
   * Claims `key` for an operation, in one transaction: a new key records `operationId`; a known
   * key with the same body hash returns the operation it recorded; another body hash is a conflict.
   */
  claim(req: {
    key: string;
    scope: string;
    bodyHash: string;
    operationId: string;
  }): Promise<{ kind: 'new' } | { kind: 'existing'; operationId: string } | { kind: 'conflict' }>;
  /** Drops what an operation claimed when it was refused before it began. */
  forget(key: string, scope: string): Promise<void>;
}
