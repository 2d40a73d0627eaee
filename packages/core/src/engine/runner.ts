import { randomUUID } from 'node:crypto';
import { type Logger, silentLogger } from '@vmplane/common';
import { CancelledError, CoreError } from '../errors.js';
import type { StageOutcome, UndoHandler } from '../providers/provider.js';
import type { NewEvent, OperationRecord, Store } from '../store/contract.js';
import type { EventBus } from './bus.js';
import { elapsedSeconds, errorMessage, outputLine, startMessage, successMessage } from './messages.js';
import { scrubber } from './scrub.js';
import type { OperationEvent, StageContext, UndoHandle } from './stage.js';

/** One named step of an operation. Returning `{ skipped: true }` reports success "skipped". */
export interface StageDef {
  name: string;
  /** What the opening event says after `[*] ` (default: `start <name>`). */
  startText?: string;
  /** What the success event says after `[+] ` when the outcome brings no message (default: the name). */
  successText?: string;
  /** go-pve-qemu ends start and reboot with an `info` event instead of `success`. */
  successStatus?: 'success' | 'info';
  run(ctx: StageContext): Promise<StageOutcome | undefined>;
}

/** Finds the handler for an undo intent: core's own kinds, then the operation's provider's. */
export type UndoLookup = (kind: string, operation: OperationRecord) => UndoHandler | undefined;

export interface EngineOptions {
  store: Store;
  bus: EventBus;
  undo: UndoLookup;
  logger?: Logger;
  /** Milliseconds each undo may take; an undo that hangs must not hold the rest. */
  undoTimeoutMs?: number;
}

export interface StartRequest {
  kind: string;
  /** Journal-safe: the caller has taken the secrets out. */
  request: Record<string, unknown>;
  instanceId?: string;
  provider?: string;
  stages: readonly StageDef[];
  /** Values never to be written anywhere (passwords): every message is scrubbed of them. */
  secrets?: readonly string[];
  /** The whole operation's deadline. */
  timeoutMs?: number;
  /** `vm_id` and `ip` for events, read when each event is written (stages learn them as they go). */
  eventFields?: () => { vmId?: number; ip?: string };
  /** Runs after the last stage, before the operation is marked succeeded; its result is stored. */
  onSuccess?: (operation: OperationRecord) => Promise<Record<string, unknown> | undefined>;
  /** Runs after undo, whatever failed. */
  onFailure?: (operation: OperationRecord, error: unknown) => Promise<void>;
  idempotency?: { key: string; scope: string; bodyHash: string };
  /**
   * Refusals that come after the key: a replay of a request whose effect now exists (an install's
   * name is taken by its own instance) must get its operation back, not the refusal. Throwing here
   * records nothing and frees the key.
   */
  precheck?: () => Promise<void>;
  /** The operation's first event, before any stage (go-pve-qemu: an empty step, `[*] start VM installation`). */
  opening?: { step: string; message: string };
  /** Events after the last stage succeeded (go-pve-qemu's summary: total time, VMID, IP, user). */
  closing?: (seconds: number) => Omit<NewEvent, 'status'>[];
}

export interface Started {
  operation: OperationRecord;
  /** True when an idempotency key gave back an operation started earlier. */
  existing: boolean;
}

interface Running {
  controller: AbortController;
  done: Promise<OperationRecord>;
}

/**
 * Runs operations: stages in order, each announced, timed and journalled; every undo persisted
 * before its step acts; on failure, cancel or shutdown, the undos in reverse, then an honest last
 * event. The journal and the undo log live in the store, so `recover()` in the next process can
 * finish what a killed one left.
 */
export class Engine {
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #undo: UndoLookup;
  readonly #logger: Logger;
  readonly #undoTimeoutMs: number;
  readonly #running = new Map<string, Running>();

  constructor(opts: EngineOptions) {
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#undo = opts.undo;
    this.#logger = opts.logger ?? silentLogger;
    this.#undoTimeoutMs = opts.undoTimeoutMs ?? 120_000;
  }

  /** Records the operation and runs it in the background. Resolves once it is recorded. */
  async start(req: StartRequest): Promise<Started> {
    const id = randomUUID();
    if (req.idempotency) {
      const claim = await this.#store.idempotency.claim({ ...req.idempotency, operationId: id });
      if (claim.kind === 'conflict')
        throw new IdempotencyKeyReused(
          `Idempotency-Key ${JSON.stringify(req.idempotency.key)} was used with another body`,
        );
      if (claim.kind === 'existing') {
        const operation = await this.#store.operations.get(claim.operationId);
        if (operation) return { operation, existing: true };
      }
    }
    const create: Parameters<Store['operations']['create']>[0] = { id, kind: req.kind, request: req.request };
    if (req.instanceId !== undefined) create.instanceId = req.instanceId;
    if (req.provider !== undefined) create.provider = req.provider;
    let operation: OperationRecord;
    try {
      await req.precheck?.();
      operation = await this.#store.operations.create(create);
    } catch (error) {
      if (req.idempotency) await this.#store.idempotency.forget(req.idempotency.key, req.idempotency.scope);
      throw error;
    }
    this.#bus.publish({ type: 'operation', operation });
    const controller = new AbortController();
    const done = this.#run(operation, req, controller.signal).finally(() => this.#running.delete(operation.id));
    this.#running.set(operation.id, { controller, done });
    return { operation, existing: false };
  }

  /** Asks a running operation to stop; it undoes what it did and ends `cancelled`. */
  async cancel(id: string): Promise<OperationRecord | undefined> {
    const op = await this.#store.operations.requestCancel(id);
    const running = this.#running.get(id);
    running?.controller.abort(new CancelledError({ message: 'the operation was cancelled' }));
    return op;
  }

  /** The operation once it has ended: at once when it is not running in this process. */
  async finished(id: string): Promise<OperationRecord | undefined> {
    const running = this.#running.get(id);
    if (running) return running.done;
    return this.#store.operations.get(id);
  }

  isRunning(id: string): boolean {
    return this.#running.has(id);
  }

  /** Stops every running operation (SIGTERM): each undoes and ends `interrupted`. */
  async shutdown(): Promise<void> {
    const all = [...this.#running.values()];
    for (const r of all) r.controller.abort(new ShutdownError({ message: 'the server is shutting down' }));
    await Promise.allSettled(all.map((r) => r.done));
  }

  /**
   * What a killed process left: each operation still `pending` or `running` has its persisted
   * undos run in reverse and ends `interrupted` with an error event. The events written before
   * the kill stay in the journal.
   */
  async recover(): Promise<OperationRecord[]> {
    const out: OperationRecord[] = [];
    for (const op of await this.#store.operations.unfinished()) {
      if (this.#running.has(op.id)) continue;
      const emit = this.#emitter(op, undefined, () => ({}));
      await emit({
        step: 'recovery',
        status: 'processing',
        message: '[*] start recovery: the server stopped mid-operation',
      });
      const undoErrors = await this.#undoAll(op, emit);
      const why = 'the server stopped before the operation finished; what it had done was undone';
      await emit({
        step: 'recovery',
        status: 'error',
        message: errorMessage('recovery', undoErrors ? `${why}, except ${undoErrors}` : why),
      });
      const ended = await this.#end(op, 'interrupted', { code: 'interrupted', message: why });
      if (ended) out.push(ended);
    }
    return out;
  }

  async #run(op: OperationRecord, req: StartRequest, cancel: AbortSignal): Promise<OperationRecord> {
    const signal = req.timeoutMs === undefined ? cancel : AbortSignal.any([cancel, AbortSignal.timeout(req.timeoutMs)]);
    const fields = req.eventFields ?? (() => ({}));
    const emit = this.#emitter(op, req.secrets, fields);
    const running = await this.#store.operations.update(op.id, { status: 'running' });
    if (running) this.#bus.publish({ type: 'operation', operation: running });
    let current = '';
    const opStart = Date.now();
    let stageStart = opStart;
    try {
      if (req.opening) await emit({ ...req.opening, status: 'processing' });
      for (const stage of req.stages) {
        current = stage.name;
        if (signal.aborted) throw signal.reason;
        stageStart = Date.now();
        await emit({
          step: stage.name,
          status: 'processing',
          message: startMessage(stage.startText ?? `start ${stage.name}`),
        });
        const outcome = await stage.run(this.#context(op, stage.name, signal, emit));
        const seconds = elapsedSeconds(stageStart, Date.now());
        const name = outcome?.renamedTo ?? stage.name;
        const text = outcome?.skipped
          ? `${name} skipped${outcome.message ? `: ${outcome.message}` : ''}`
          : (outcome?.message ?? (outcome?.renamedTo ? name : (stage.successText ?? name)));
        const status = stage.successStatus ?? 'success';
        const message = status === 'info' ? `[+] ${text}` : successMessage(text, seconds);
        await emit({ step: name, status, message, elapsed: seconds });
      }
      if (signal.aborted) throw signal.reason;
      if (req.closing)
        for (const e of req.closing(elapsedSeconds(opStart, Date.now()))) await emit({ ...e, status: 'success' });
      const result = req.onSuccess ? await req.onSuccess(op) : undefined;
      await this.#store.undo.clear(op.id);
      const change: Parameters<Store['operations']['update']>[1] = { status: 'succeeded', endedAt: now() };
      if (result) change.result = result;
      const ended = await this.#store.operations.update(op.id, change);
      if (ended) this.#bus.publish({ type: 'operation', operation: ended });
      return ended ?? op;
    } catch (thrown) {
      const error = signal.aborted && !(thrown instanceof CoreError) ? (signal.reason ?? thrown) : thrown;
      const status =
        error instanceof CancelledError ? 'cancelled' : error instanceof ShutdownError ? 'interrupted' : 'failed';
      const why = describe(error, req.secrets);
      const seconds = elapsedSeconds(stageStart, Date.now());
      // The stage's own error comes first, so that a reader sees what broke before the rollback.
      await emit({
        step: current || req.kind,
        status: 'processing',
        message: errorMessage(current || req.kind, why),
        elapsed: seconds,
      }).catch(() => undefined);
      const undoErrors = await this.#undoAll(op, emit);
      if (req.onFailure)
        await req
          .onFailure(op, error)
          .catch((e: unknown) => this.#logger.warn('onFailure failed', { error: String(e) }));
      const final = undoErrors ? `${why} (undo incomplete: ${undoErrors})` : why;
      await emit({
        step: current || req.kind,
        status: 'error',
        message: errorMessage(current || req.kind, final),
        elapsed: seconds,
      }).catch(() => undefined);
      return (await this.#end(op, status, { code: codeOf(error), message: final })) ?? op;
    }
  }

  #context(op: OperationRecord, stage: string, signal: AbortSignal, emit: Emit): StageContext {
    const store = this.#store;
    return {
      operationId: op.id,
      signal,
      async log(message: string) {
        for (const line of message.split('\n'))
          await emit({ step: stage, status: 'processing', message: outputLine(line) });
      },
      async registerUndo(kind: string, payload: Record<string, unknown>): Promise<UndoHandle> {
        const intent = await store.undo.push(op.id, kind, payload);
        return {
          discard: () => store.undo.remove(intent.id),
          update: (next) => store.undo.update(intent.id, next),
        };
      },
    };
  }

  /** Runs the operation's pending undos, newest first; returns what could not be undone, or ''. */
  async #undoAll(op: OperationRecord, emit: Emit): Promise<string> {
    const failed: string[] = [];
    for (const intent of await this.#store.undo.pending(op.id)) {
      const handler = this.#undo(intent.kind, op);
      const step = `rollback > ${intent.kind}`;
      if (!handler) {
        failed.push(`${intent.kind} (no handler)`);
        await emit({ step, status: 'error', message: errorMessage(step, 'no handler for this undo') });
        continue;
      }
      const started = Date.now();
      await emit({ step, status: 'processing', message: startMessage(`start ${step}`) });
      try {
        await handler(intent.payload, { timeout: this.#undoTimeoutMs });
        await this.#store.undo.remove(intent.id);
        const s = elapsedSeconds(started, Date.now());
        await emit({ step, status: 'success', message: successMessage(step, s), elapsed: s });
      } catch (error) {
        // The intent stays: the next recovery tries again.
        failed.push(intent.kind);
        this.#logger.warn('undo failed', { operation: op.id, kind: intent.kind, error: describe(error) });
        await emit({ step, status: 'processing', message: errorMessage(step, describe(error)) });
      }
    }
    return failed.join(', ');
  }

  async #end(
    op: OperationRecord,
    status: 'failed' | 'cancelled' | 'interrupted',
    error: { code: string; message: string },
  ) {
    const ended = await this.#store.operations.update(op.id, { status, error, endedAt: now() });
    if (ended) this.#bus.publish({ type: 'operation', operation: ended });
    return ended;
  }

  #emitter(
    op: OperationRecord,
    secrets: readonly string[] | undefined,
    fields: () => { vmId?: number; ip?: string },
  ): Emit {
    const scrub = scrubber(secrets);
    return async (event) => {
      const extra = fields();
      const e: NewEvent = { ...event, message: scrub(event.message) };
      if (extra.vmId !== undefined && e.vmId === undefined) e.vmId = extra.vmId;
      if (extra.ip !== undefined && e.ip === undefined) e.ip = extra.ip;
      const stored = await this.#store.operations.appendEvent(op.id, e);
      this.#bus.publish({ type: 'operation-event', event: stored });
      return stored;
    };
  }
}

type Emit = (event: NewEvent) => Promise<OperationEvent>;

/** The server is stopping: running operations end `interrupted`, their work undone. */
export class ShutdownError extends CoreError {
  override name = 'ShutdownError';
  readonly code = 'interrupted';
  readonly status = 503;
}

export class IdempotencyKeyReused extends CoreError {
  override name = 'IdempotencyKeyReused';
  readonly code = 'idempotency_conflict';
  readonly status = 409;
  constructor(message: string) {
    super({ message });
  }
}

function now(): string {
  return new Date().toISOString();
}

function codeOf(error: unknown): string {
  if (error instanceof CoreError) return error.code;
  if (error instanceof Error && error.name === 'TimeoutError') return 'timeout';
  return 'failed';
}

function describe(error: unknown, secrets?: readonly string[]): string {
  const text = error instanceof Error ? error.message : String(error);
  return scrubber(secrets)(text.split('\n')[0] ?? text);
}
