/**
 * The tables as Kysely sees them. Only types every SQL database has: text, integer and double
 * precision. JSON is text, parsed in TypeScript, and booleans are 0/1 integers, so that PostgreSQL
 * (or anything else Kysely speaks) reads the same rows the same way.
 */

export interface InstanceRow {
  id: string;
  name: string;
  image: string;
  state: string;
  state_error: string | null;
  size: string | null;
  vcpus: number | null;
  /** JSON: Record<string, string>. */
  env: string;
  /** JSON: Record<string, string>. */
  tags: string;
  /** JSON: InstanceNetwork. */
  network: string | null;
  created_at: string;
  expires_at: string | null;
  started_at: string | null;
  stopped_at: string | null;
  exit_code: number | null;
  exit_message: string | null;
  /** 0 or 1. */
  has_snapshot: number | null;
  hypervisor: string | null;
  current_phase: string | null;
  current_phase_since: string | null;
  /** JSON: Record<string, number>. */
  phase_durations_ms: string | null;
  provider: string;
  /** JSON: ProviderRef. */
  ref: string;
  /** refKey(ref), kept beside it for the lookup and the unique index. */
  ref_key: string;
  updated_at: string;
}

export interface OperationRow {
  id: string;
  kind: string;
  status: string;
  instance_id: string | null;
  provider: string | null;
  /** JSON object. */
  request: string;
  /** JSON: { code, message }. */
  error: string | null;
  /** JSON object. */
  result: string | null;
  /** 0 or 1. */
  cancel_requested: number;
  /** The last journal seq handed out: bumping it is what numbers events without a race. */
  last_seq: number;
  /** The same for undo intents. */
  undo_seq: number;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
}

export interface EventRow {
  operation_id: string;
  seq: number;
  step: string;
  status: string;
  message: string;
  elapsed: number | null;
  vm_id: number | null;
  ip: string | null;
  at: string;
}

export interface AllocationRow {
  pool: string;
  value: string;
  owner: string;
  created_at: string;
}

export interface UndoRow {
  id: number;
  operation_id: string;
  seq: number;
  kind: string;
  /** JSON object. */
  payload: string;
  created_at: string;
}

export interface TokenRow {
  id: string;
  name: string;
  scope: string;
  /** SHA-256 of the whole token, hex: the secret itself is never stored. */
  hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface IdempotencyRow {
  scope: string;
  key: string;
  body_hash: string;
  operation_id: string;
  created_at: string;
}

/** Named counters (undo intent ids): an UPDATE ... RETURNING, which every target database has. */
export interface CounterRow {
  name: string;
  value: number;
}

export interface StoreSchema {
  instances: InstanceRow;
  operations: OperationRow;
  operation_events: EventRow;
  allocations: AllocationRow;
  undo_intents: UndoRow;
  api_tokens: TokenRow;
  idempotency_keys: IdempotencyRow;
  counters: CounterRow;
}
