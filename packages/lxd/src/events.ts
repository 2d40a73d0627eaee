import { inspect } from 'node:util';
import {
  type BackoffOptions,
  backoffDelay,
  type CallOptions,
  ConnectionError,
  checkCallOptions,
  InvalidArgumentError,
  redactText,
  sleep,
  VmplaneError,
} from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND } from './errors.js';
import { checkProjectName } from './names.js';
import type { LxdTransport } from './transport.js';
import type { Event as ApiEvent, Operation } from './types/api.js';

export type EventType = 'lifecycle' | 'operation' | 'logging';

/** A lifecycle event: `instance-created`, `instance-started`, ... (metadata of type=lifecycle). */
export interface EventLifecycle {
  action: string;
  source: string;
  context?: Record<string, unknown>;
  requestor?: { username: string; protocol: string; address?: string } | null;
}

/** A log record (metadata of type=logging). */
export interface EventLogging {
  message: string;
  level: string;
  context: Record<string, string>;
}

export type LxdEvent =
  | (Omit<ApiEvent, 'type' | 'metadata'> & { type: 'lifecycle'; metadata: EventLifecycle })
  | (Omit<ApiEvent, 'type' | 'metadata'> & { type: 'operation'; metadata: Operation })
  | (Omit<ApiEvent, 'type' | 'metadata'> & { type: 'logging'; metadata: EventLogging });

export interface ReconnectInfo {
  /** Reconnection attempt, from 1. */
  attempt: number;
  /** How long we wait before it. */
  delayMs: number;
  /** Why the stream dropped. */
  error: unknown;
}

export interface EventsOptions extends Pick<CallOptions, 'signal'> {
  /** Event types to receive; all when omitted. */
  types?: readonly EventType[];
  project?: string;
  allProjects?: boolean;
  /** Reconnect after the connection drops (default true), with capped backoff. */
  reconnect?: boolean;
  backoff?: BackoffOptions;
  /** Told before each reconnection attempt. */
  onReconnect?: (info: ReconnectInfo) => void;
  /** Interval of our own pings, to notice a silent dead connection. Default 15 s. */
  pingInterval?: number;
  /**
   * How many events may wait for a reader (default 10,000). When a reader falls that far behind,
   * the stream stops: the reader gets the events kept, then an EventOverflowError.
   */
  maxBuffered?: number;
}

const DEFAULT_MAX_BUFFERED = 10_000;

/**
 * The reader fell behind by more than `maxBuffered` events: the stream stopped rather than drop
 * events silently or grow without bound. Every event before the gap was delivered; a watcher
 * re-reads the state it follows and opens a new stream.
 */
export class EventOverflowError extends VmplaneError {
  override name = 'EventOverflowError';
  /** The cap that was reached. */
  readonly limit: number;
  constructor(limit: number) {
    super({
      message: `event stream stopped: its reader fell ${limit} events behind (maxBuffered); later events were not kept`,
      backend: BACKEND,
    });
    this.limit = limit;
  }
}

/**
 * LXD's event stream as an AsyncIterable that owns its websocket: leaving the `for await` closes
 * it. It connects at once, so events that happen after `ready()` are never missed.
 */
export class EventStream implements AsyncIterable<LxdEvent> {
  /** How many times the stream has reconnected. */
  reconnects = 0;
  private socket: WebSocket | undefined;
  private readonly buffer: LxdEvent[] = [];
  private waiter: ((r: IteratorResult<LxdEvent>) => void) | undefined;
  private failer: ((e: unknown) => void) | undefined;
  private closed = false;
  private fatal: unknown;
  private readonly readyPromise: Promise<void>;
  private readonly abort = new AbortController();
  private readonly maxBuffered: number;

  constructor(
    private readonly transport: LxdTransport,
    private readonly opts: EventsOptions = {},
  ) {
    this.maxBuffered = checkOptions(opts);
    if (opts.signal) {
      if (opts.signal.aborted) this.close();
      else opts.signal.addEventListener('abort', () => this.close(), { once: true });
    }
    this.readyPromise = this.connect();
    this.readyPromise.catch((error) => this.fail(error));
  }

  /** Resolves once the first connection is open: events from then on are delivered. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  private params() {
    return {
      type: this.opts.types?.length ? this.opts.types.join(',') : undefined,
      'all-projects': this.opts.allProjects ? 'true' : undefined,
    };
  }

  private async connect(): Promise<void> {
    const project = this.opts.allProjects ? null : this.opts.project;
    const ws = await this.transport.websocket('/1.0/events', this.params(), {
      signal: this.abort.signal,
      ...(project === undefined ? {} : { project }),
      // The first events can arrive in the tick the socket opens: listen from its creation.
      onSocket: (socket) => this.listen(socket),
    });
    if (this.closed) {
      ws.close();
      return;
    }
    this.attach(ws);
  }

  private listen(ws: WebSocket): void {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary || this.closed) return;
      try {
        this.push(JSON.parse(data.toString('utf8')) as LxdEvent);
      } catch {
        // A frame that is not JSON is not an event; LXD sends none, so ignoring it loses nothing.
      }
    });
  }

  private attach(ws: WebSocket): void {
    this.socket = ws;
    let alive = true;
    let silent = false;
    const interval = this.opts.pingInterval ?? 15_000;
    const pinger = setInterval(() => {
      if (!alive) {
        silent = true;
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, interval);
    pinger.unref();
    ws.on('pong', () => {
      alive = true;
    });
    ws.on('message', () => {
      alive = true;
    });
    let failure: Error | undefined;
    ws.on('error', (error: Error) => {
      // 'close' follows every 'error' and drives the reconnection; the error says why.
      failure ??= error;
    });
    ws.once('close', () => {
      clearInterval(pinger);
      if (this.closed) return;
      const why = silent
        ? `no answer to pings for ${interval * 2} ms`
        : failure
          ? redactText(failure.message)
          : 'closed by the server';
      void this.reconnect(
        new ConnectionError({
          message: `lxd event stream lost: ${why}`,
          backend: BACKEND,
          sent: true,
          syscallCode: (failure as NodeJS.ErrnoException | undefined)?.code,
        }),
      );
    });
  }

  private async reconnect(error: unknown): Promise<void> {
    if (this.opts.reconnect === false) {
      this.fail(error);
      return;
    }
    for (let attempt = 1; !this.closed; attempt++) {
      const delayMs = backoffDelay(attempt - 1, { initial: 250, max: 10_000, ...this.opts.backoff });
      this.reconnects++;
      this.transport.logger.warn('lxd event stream reconnecting', {
        attempt,
        delayMs,
        error: error instanceof Error ? redactText(error.message) : String(error),
      });
      this.opts.onReconnect?.({ attempt, delayMs, error });
      try {
        await sleep(delayMs, this.abort.signal);
        await this.connect();
        return;
      } catch (e) {
        if (this.closed) return;
        error = e;
      }
    }
  }

  private push(event: LxdEvent): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.failer = undefined;
      w({ value: event, done: false });
    } else if (this.buffer.length >= this.maxBuffered) {
      this.fail(new EventOverflowError(this.maxBuffered));
    } else this.buffer.push(event);
  }

  /** How many events wait for the reader. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** What printing shows: the stream's state, never its socket (whose TLS options hold the key). */
  toJSON(): Record<string, unknown> {
    return { reconnects: this.reconnects, buffered: this.buffer.length, closed: this.closed };
  }

  [inspect.custom](): string {
    return `EventStream ${inspect(this.toJSON())}`;
  }

  /** Ends the stream with an error: the events kept come first, then the error, once. */
  private fail(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.socket?.terminate();
    if (this.failer) {
      // A reader waits, so nothing is buffered: it gets the error now, and only it.
      const f = this.failer;
      this.waiter = undefined;
      this.failer = undefined;
      f(error);
    } else this.fatal = error;
  }

  /** Stops the stream and closes its websocket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer.length = 0;
    this.abort.abort();
    this.socket?.close();
    this.socket?.removeAllListeners('message');
    const w = this.waiter;
    this.waiter = undefined;
    this.failer = undefined;
    w?.({ value: undefined, done: true });
  }

  /** The next event, or done when the stream was closed. */
  next(): Promise<IteratorResult<LxdEvent>> {
    const buffered = this.buffer.shift();
    if (buffered) return Promise.resolve({ value: buffered, done: false });
    if (this.fatal !== undefined) {
      const error = this.fatal;
      this.fatal = undefined;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<LxdEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }
}

function checkOptions(opts: EventsOptions): number {
  if (opts === null || typeof opts !== 'object') {
    throw new InvalidArgumentError({
      message: 'events options must be an object',
      argument: 'options',
      backend: BACKEND,
    });
  }
  checkCallOptions({ signal: opts.signal }, BACKEND);
  if (opts.project !== undefined) checkProjectName(opts.project);
  const max = opts.maxBuffered ?? DEFAULT_MAX_BUFFERED;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
    throw new InvalidArgumentError({
      message: `maxBuffered must be an integer from 1 up, not ${String(max)}`,
      argument: 'maxBuffered',
      backend: BACKEND,
    });
  }
  const ping = opts.pingInterval;
  if (ping !== undefined && (typeof ping !== 'number' || !Number.isFinite(ping) || ping < 1 || ping >= 2 ** 31)) {
    throw new InvalidArgumentError({
      message: `pingInterval must be a number of milliseconds from 1 below 2^31, not ${String(ping)}`,
      argument: 'pingInterval',
      backend: BACKEND,
    });
  }
  return max;
}
