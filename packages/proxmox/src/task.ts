import {
  backoffDelay,
  type CallOptions,
  deadline,
  noteSent,
  OperationFailedError,
  path,
  sleep,
  withDeadline,
} from '@vmplane/common';
import { BACKEND } from './errors.js';
import { optionalInteger, optionalMs } from './ids.js';
import { callOptions, options } from './options.js';
import type { ProxmoxTransport } from './transport.js';
import { parseUpid, type Upid } from './upid.js';

/** `GET /nodes/{node}/tasks/{upid}/status`. */
export interface TaskStatus {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  status: 'running' | 'stopped';
  /** Set once stopped: `OK`, `WARNINGS: n`, or the error text. */
  exitstatus?: string;
}

/** One line of a task log. */
export interface TaskLogLine {
  /** Line number, from 1. */
  n: number;
  t: string;
}

export interface TaskWaitOptions extends CallOptions {
  /** First poll delay in ms (default 250); grows by `factor` up to `maxInterval`. */
  interval?: number;
  maxInterval?: number;
  /** Lines of the log carried by an OperationFailedError (default 20). */
  logTail?: number;
}

export interface TaskLogOptions extends CallOptions {
  /** Poll interval while the task runs (ms, default 500). */
  interval?: number;
  /** Start after this many lines (default 0). */
  start?: number;
}

/** True for the exit statuses PVE treats as success. */
export function isTaskSuccess(exitstatus: string | undefined): boolean {
  return exitstatus === 'OK' || (exitstatus !== undefined && /^WARNINGS: \d+$/.test(exitstatus));
}

/** A PVE task (UPID): wait for it, read or follow its log, stop it. */
export class Task {
  readonly upid: string;
  readonly node: string;
  readonly #t: ProxmoxTransport;
  /** Called once the task has finished well, so the caller's cache forgets what it changed. */
  readonly #onDone: (() => void) | undefined;

  constructor(transport: ProxmoxTransport, upid: string, onDone?: () => void) {
    this.#t = transport;
    this.upid = upid;
    this.node = parseUpid(upid).node;
    this.#onDone = onDone;
  }

  /** The UPID's fields: type, id, user (with token), start time. */
  get info(): Upid {
    return parseUpid(this.upid);
  }

  async status(opts: CallOptions = {}): Promise<TaskStatus> {
    return this.#t.get<TaskStatus>(path`/nodes/${this.node}/tasks/${this.upid}/status`, callOptions(opts));
  }

  /** One page of the log. */
  async log(opts: CallOptions & { start?: number; limit?: number } = {}): Promise<TaskLogLine[]> {
    opts = options(opts);
    const params = { start: optionalInteger(opts.start, 'start'), limit: optionalInteger(opts.limit, 'limit') };
    return this.#t.get<TaskLogLine[]>(path`/nodes/${this.node}/tasks/${this.upid}/log`, {
      ...callOptions(opts),
      params,
    });
  }

  /** Stops a running task. */
  async stop(opts: CallOptions = {}): Promise<void> {
    await this.#t.delete(path`/nodes/${this.node}/tasks/${this.upid}`, callOptions(opts));
  }

  /**
   * Polls until the task stops, with growing intervals. Resolves with the final status when PVE
   * reports `OK` or `WARNINGS: n`; otherwise rejects with an OperationFailedError carrying the
   * exit status and the last lines of the log. A timeout or an abort ends the wait, not the task:
   * the TimeoutError/AbortError carries the UPID as its `operationId`.
   */
  async wait(opts: TaskWaitOptions = {}): Promise<TaskStatus> {
    opts = options(opts);
    const interval = optionalMs(opts.interval, 'interval') ?? 250;
    const maxInterval = optionalMs(opts.maxInterval, 'maxInterval') ?? 2_000;
    const logTail = optionalInteger(opts.logTail, 'logTail') ?? 20;
    return this.#noted(
      withDeadline(callOptions(opts), BACKEND, async (d) => {
        for (let attempt = 0; ; attempt++) {
          const status = await this.status({ signal: d.signal });
          if (status.status === 'stopped') {
            if (isTaskSuccess(status.exitstatus)) {
              this.#onDone?.();
              return status;
            }
            this.#onDone?.();
            throw await this.#failure(status, logTail, d.signal);
          }
          const delay = backoffDelay(attempt, { initial: interval, max: maxInterval, factor: 1.5, jitter: 0.2 });
          await sleep(delay, d.signal);
        }
      }),
    );
  }

  /** The task runs on whatever ended the call: a timeout or abort says which task that was. */
  async #noted<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      noteSent(error, this.upid);
      throw error;
    }
  }

  /**
   * Follows the log as it grows, line by line, until the task stops and every line was read.
   * Leaving the loop early stops the polling.
   */
  async *follow(opts: TaskLogOptions = {}): AsyncGenerator<TaskLogLine, void, undefined> {
    opts = options(opts);
    let next = optionalInteger(opts.start, 'start') ?? 0;
    const interval = optionalMs(opts.interval, 'interval') ?? 500;
    // `timeout` bounds each request; `signal` the whole follow, its pauses included.
    const call = callOptions(opts);
    try {
      for (;;) {
        // Read the status first: a log read after a `stopped` status is known to be complete.
        const status = await this.status(call);
        for (;;) {
          const page = await this.log({ ...call, start: next, limit: 500 });
          // PVE answers an empty log with one pseudo line `no content`; it is not part of the log.
          const empty = page.length === 1 && page[0]?.t === 'no content';
          const fresh = empty ? [] : page.filter((l) => l.n > next);
          for (const line of fresh) {
            next = line.n;
            yield line;
          }
          if (fresh.length < 500) break;
        }
        if (status.status === 'stopped') return;
        await this.#pause(interval, opts.signal);
      }
    } catch (error) {
      noteSent(error, this.upid);
      throw error;
    }
  }

  async #pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const d = deadline({ signal }, BACKEND);
    try {
      await sleep(ms, d.signal);
    } catch (error) {
      throw d.reason() ?? error;
    } finally {
      d.dispose();
    }
  }

  async #failure(status: TaskStatus, tail: number, signal: AbortSignal): Promise<OperationFailedError> {
    let logTail: string[] = [];
    try {
      const lines = await this.log({ signal, start: 0, limit: 10_000 });
      logTail = lines.slice(-tail).map((l) => l.t);
    } catch {
      // The failure matters more than its log: report it even when the log cannot be read.
    }
    const info = this.info;
    return new OperationFailedError({
      status: 500,
      backend: BACKEND,
      operationId: this.upid,
      logTail,
      body: status,
      message: `Task ${info.type}${info.id ? ` ${info.id}` : ''} on ${this.node} failed: ${status.exitstatus ?? 'unknown exit status'}`,
    });
  }
}
