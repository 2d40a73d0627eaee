import { inspect } from 'node:util';
import {
  type CallOptions,
  callOptions,
  checkCallOptions,
  OperationFailedError,
  path,
  withDeadline,
} from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND, noteSentAll } from './errors.js';
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

/** Metadata keys that hold secrets: exec and console websocket secrets, image secrets. */
const SECRET_KEYS = ['fds', 'secret'] as const;

/**
 * Makes an operation's secrets (its websocket `fds`, an image `secret`) invisible to printing:
 * they stay readable by name (`op.metadata.fds`), but are not enumerable, so neither
 * JSON.stringify nor util.inspect nor a spread shows them.
 */
export function hideSecrets(op: Operation): Operation {
  const metadata = op?.metadata as Record<string, unknown> | null | undefined;
  if (!metadata || typeof metadata !== 'object') return op;
  for (const key of SECRET_KEYS) {
    const d = Object.getOwnPropertyDescriptor(metadata, key);
    if (!d?.enumerable) continue;
    const value = d.value as unknown;
    Object.defineProperty(metadata, key, { get: () => value, enumerable: false, configurable: true });
  }
  return op;
}

/** An operation with its secrets left out altogether (a copy; the original keeps them). */
function omitSecrets(op: Operation): Operation {
  const source = op.metadata as Record<string, unknown> | null | undefined;
  if (!source || typeof source !== 'object') return { ...op };
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) {
    if (!(SECRET_KEYS as readonly string[]).includes(key)) metadata[key] = value;
  }
  return { ...op, metadata } as Operation;
}

/** An operation as it may appear in an error or a printout: secrets replaced. */
function withoutSecrets(op: Operation): Operation {
  const source = op.metadata as Record<string, unknown> | null | undefined;
  if (!source || typeof source !== 'object') return { ...op };
  const metadata: Record<string, unknown> = { ...source };
  for (const key of SECRET_KEYS) if (key in source) metadata[key] = '[redacted]';
  return { ...op, metadata } as Operation;
}

/**
 * A long-running LXD operation. Its final state is awaited from the moment it exists, so a fast
 * operation's result is kept even after LXD forgets it (about 5 s after it ends).
 *
 * An interrupted `wait` (abort or timeout) throws an error that names this operation
 * (`operationId`), so that the caller can find it again: the work goes on in the daemon.
 */
export class LxdOperation {
  readonly id: string;
  readonly project: string | undefined;
  readonly #transport: LxdTransport;
  /** The creating call's answer, secrets included (hidden from printing). */
  readonly #initial: Operation;
  readonly #shown: Operation;
  readonly #final: Promise<Operation>;

  constructor(transport: LxdTransport, initial: Operation, project?: string) {
    this.#transport = transport;
    this.#initial = hideSecrets(initial);
    this.#shown = omitSecrets(this.#initial);
    this.id = initial.id;
    this.project = project;
    this.#final = isFinal(initial.status_code)
      ? Promise.resolve(this.#initial)
      : transport
          .request<Operation>({
            method: 'GET',
            path: path`/1.0/operations/${this.id}/wait`,
            query: { timeout: -1 },
            timeout: Number.POSITIVE_INFINITY,
            project: project ?? null,
          })
          .then((r) => hideSecrets(r.metadata));
    // Nobody may ever wait; an unobserved failure must not crash the process.
    this.#final.catch(() => {});
  }

  /**
   * The operation as the creating call answered it, without its secrets (`metadata.fds`,
   * `metadata.secret`): {@link websocketSecrets} gives an exec's or console's, and
   * `images.createSecret` returns an image's.
   */
  get initial(): Operation {
    return this.#shown;
  }

  /** The secrets of the operation's websockets (exec: `0`, `1`, `2`, `control`), by fd name. */
  websocketSecrets(): Record<string, string> {
    const fds = (this.#initial.metadata as { fds?: unknown } | null)?.fds;
    const out: Record<string, string> = {};
    if (fds && typeof fds === 'object') {
      for (const [fd, secret] of Object.entries(fds)) if (typeof secret === 'string') out[fd] = secret;
    }
    return out;
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
  async settled(opts: CallOptions = {}): Promise<Operation> {
    try {
      return await withDeadline(opts, BACKEND, (d) =>
        Promise.race([
          this.#final,
          new Promise<never>((_, reject) => {
            d.signal.addEventListener('abort', () => reject(d.reason()), { once: true });
          }),
        ]),
      );
    } catch (error) {
      // The operation exists and goes on: the interruption says which one it is.
      noteSentAll(error, this.id);
      throw error;
    }
  }

  /** The operation's current state from the daemon (only while LXD still remembers it). */
  async get(opts: CallOptions = {}): Promise<Operation> {
    const r = await this.#transport.request<Operation>({
      method: 'GET',
      path: path`/1.0/operations/${this.id}`,
      project: this.project ?? null,
      ...callOptions(opts),
    });
    return hideSecrets(r.metadata);
  }

  /** Asks LXD to cancel it (only operations with may_cancel). */
  async cancel(opts: CallOptions = {}): Promise<void> {
    await this.#transport.request({
      method: 'DELETE',
      path: path`/1.0/operations/${this.id}`,
      project: this.project ?? null,
      ...callOptions(opts),
    });
  }

  /** Opens one of the operation's websockets (exec fds, console) with its secret. */
  async websocket(secret: string, opts: Omit<WebSocketOptions, 'project'> = {}): Promise<WebSocket> {
    checkCallOptions(opts, BACKEND);
    return this.#transport.websocket(
      path`/1.0/operations/${this.id}/websocket`,
      { secret },
      { ...callOptions(opts), ...(opts.onSocket ? { onSocket: opts.onSocket } : {}), project: null },
    );
  }

  /** Progress updates until the operation ends, from the daemon's operation events. */
  async *progress(opts: Pick<CallOptions, 'signal'> = {}): AsyncGenerator<OperationProgress> {
    const stream = new EventStream(this.#transport, {
      types: ['operation'],
      ...(this.project ? { project: this.project } : { allProjects: true }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    // Give the final event a moment to arrive before closing.
    const closeSoon = () => setTimeout(() => stream.close(), 50).unref();
    this.#final.then(closeSoon, closeSoon);
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

  /** What printing an operation shows: its id, project and initial state, secrets left out. */
  toJSON(): Record<string, unknown> {
    return { id: this.id, project: this.project, initial: withoutSecrets(this.#initial) };
  }

  [inspect.custom](): string {
    return `LxdOperation ${inspect(this.toJSON(), { depth: 4 })}`;
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
