/**
 * What a provisioning step sees. The engine owns the journal, the undo log and cancellation; a step
 * only acts, reports and registers how to undo what it is about to do.
 */

/** A journal event's status, as go-pve-qemu's SSE sends it. */
export type StageStatus = 'processing' | 'success' | 'error' | 'info';

/** One event of an operation's journal: what SSE streams and what is kept across restarts. */
export interface OperationEvent {
  /** Monotonic per operation, from 1: the SSE `id:` and the `Last-Event-ID` to resume after. */
  seq: number;
  operationId: string;
  /** The stage's name (`preparation > checking VMID`), or the operation's own step. */
  step: string;
  status: StageStatus;
  message: string;
  /** Seconds since the stage began, on `success` and `error`. */
  elapsed?: number;
  vmId?: number;
  ip?: string;
  at: string;
}

export interface StageContext {
  readonly operationId: string;
  /** Aborts on cancel, on shutdown and on the operation's deadline. */
  readonly signal: AbortSignal;
  /** Streamed output (a command's line, a download's progress): journalled as `processing`. */
  log(message: string): Promise<void>;
  /**
   * Persists an undo before the step acts: `kind` names a provider's (or core's) undo handler and
   * `payload` is what it needs, journal-safe (no secrets). Returns a handle to drop it again when
   * the step decides nothing needs undoing after all.
   */
  registerUndo(kind: string, payload: Record<string, unknown>): Promise<UndoHandle>;
}

export interface UndoHandle {
  /** Drops the intent: what it would undo is now the caller's to keep (a released lock, say). */
  discard(): Promise<void>;
  /** Replaces the payload (the step learnt the VMID it got). */
  update(payload: Record<string, unknown>): Promise<void>;
}
