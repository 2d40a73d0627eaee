import { type CallOptions, OperationFailedError, path, withDeadline } from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND } from './errors.js';
import { EventStream } from './events.js';
import type { LxdTransport, WebSocketOptions } from './transport.js';
import type { Operation } from './types/api.js';
import { isFinal, StatusCode } from './types/status-code.js';

/** Progress of an operation, read from its metadata as LXD updates it. */
export interface OperationProgress {
  /** Percent done, when LXD says (downloads, unpacks, transfers). */
  percent: number | undefined;
  /** LXD's own text, e.g. "rootfs: 45% (12.30MB/s)". */
  text: string | undefined;
  /** Which stage the text came from, e.g. "download_progress". */
  stage: string | undefined;
  operation: Operation;
}

/**
 * A long-running LXD operation. Its final state is awaited from the moment it exists, so a fast
 * operation's result is kept even after LXD forgets it (about 5 s after it ends).
 */
export class LxdOperation {
  readonly id: string;
  /** The operation as the creating call answered it (fds secrets for exec live here). */
  readonly initial: Operation;
  private readonly final: Promise<Operation>;
  private readonly project: string | undefined;

  constructor(
    private readonly transport: LxdTransport,
    initial: Operation,
    project?: string,
  ) {
    this.initial = initial;
    this.id = initial.id;
    this.project = project;
    this.final = isFinal(initial.status_code)
      ? Promise.resolve(initial)
      : transport
          .request<Operation>({
            method: 'GET',
            path: path`/1.0/operations/${this.id}/wait`,
            query: { timeout: -1 },
            timeout: Number.POSITIVE_INFINITY,
            project: project ?? null,
          })
          .then((r) => r.metadata);
    // Nobody may ever wait; an unobserved failure must not crash the process.
    this.final.catch(() => {});
  }

  /** Resolves with the finished operation, or throws OperationFailedError for a failure or cancel. */
  async wait(opts: CallOptions = {}): Promise<Operation> {
    const op = await this.settled(opts);
    if (op.status_code !== StatusCode.Success) {
      throw new OperationFailedError({
        status: op.status_code === StatusCode.Cancelled ? 499 : 500,
        code: op.status_code,
        message: op.err || `Operation ${op.status}`,
        backend: BACKEND,
        body: withoutSecrets(op),
        operationId: op.id,
      });
    }
    return op;
  }

  /** Resolves with the finished operation whatever its outcome (Success, Failure or Cancelled). */
  settled(opts: CallOptions = {}): Promise<Operation> {
    return withDeadline(opts, BACKEND, (d) =>
      Promise.race([
        this.final,
        new Promise<never>((_, reject) => {
          d.signal.addEventListener('abort', () => reject(d.reason()), { once: true });
        }),
      ]),
    );
  }

  /** The operation's current state from the daemon (only while LXD still remembers it). */
  async get(opts: CallOptions = {}): Promise<Operation> {
    return (
      await this.transport.request<Operation>({
        method: 'GET',
        path: path`/1.0/operations/${this.id}`,
        project: this.project ?? null,
        ...opts,
      })
    ).metadata;
  }

  /** Asks LXD to cancel it (only operations with may_cancel). */
  async cancel(opts: CallOptions = {}): Promise<void> {
    await this.transport.request({
      method: 'DELETE',
      path: path`/1.0/operations/${this.id}`,
      project: this.project ?? null,
      ...opts,
    });
  }

  /** Opens one of the operation's websockets (exec fds, console) with its secret. */
  websocket(secret: string, opts: Omit<WebSocketOptions, 'project'> = {}): Promise<WebSocket> {
    return this.transport.websocket(path`/1.0/operations/${this.id}/websocket`, { secret }, { ...opts, project: null });
  }

  /** Progress updates until the operation ends, from the daemon's operation events. */
  async *progress(opts: Pick<CallOptions, 'signal'> = {}): AsyncGenerator<OperationProgress> {
    const stream = new EventStream(this.transport, {
      types: ['operation'],
      ...(this.project ? { project: this.project } : { allProjects: true }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    // Give the final event a moment to arrive before closing.
    const closeSoon = () => setTimeout(() => stream.close(), 50).unref();
    this.final.then(closeSoon, closeSoon);
    try {
      await stream.ready();
      for await (const event of stream) {
        if (event.type !== 'operation' || event.metadata.id !== this.id) continue;
        const p = progressOf(event.metadata);
        if (p) yield p;
        if (isFinal(event.metadata.status_code)) return;
      }
    } finally {
      stream.close();
    }
  }
}

const PERCENT = /(\d+(?:\.\d+)?)%/;

/** Reads progress out of an operation's metadata, where LXD writes `*_progress` keys. */
export function progressOf(op: Operation): OperationProgress | undefined {
  const metadata = op.metadata ?? {};
  for (const [stage, value] of Object.entries(metadata)) {
    if (!stage.endsWith('progress')) continue;
    if (typeof value === 'string') {
      const m = PERCENT.exec(value);
      return { percent: m ? Number(m[1]) : undefined, text: value, stage, operation: op };
    }
    if (value && typeof value === 'object' && 'percent' in value) {
      const percent = Number((value as { percent: unknown }).percent);
      return { percent: Number.isFinite(percent) ? percent : undefined, text: undefined, stage, operation: op };
    }
  }
  if (isFinal(op.status_code))
    return {
      percent: op.status_code === StatusCode.Success ? 100 : undefined,
      text: op.status,
      stage: undefined,
      operation: op,
    };
  return undefined;
}

/** An operation as it may appear in an error: websocket secrets (exec/console fds) removed. */
function withoutSecrets(op: Operation): Operation {
  const metadata = op.metadata ? { ...op.metadata } : op.metadata;
  if (metadata && 'fds' in metadata) metadata.fds = '[redacted]';
  if (metadata && 'secret' in metadata) metadata.secret = '[redacted]';
  return { ...op, metadata };
}
