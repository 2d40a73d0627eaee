import { AbortError, InvalidArgumentError, TimeoutError } from './errors.js';

/** Every async call in vmplane takes these. */
export interface CallOptions {
  /** The caller's signal: aborting it ends the call with an AbortError. */
  signal?: AbortSignal | undefined;
  /** Milliseconds before the call ends with a TimeoutError; `Infinity` for none. */
  timeout?: number | undefined;
}

/** One AbortSignal for a call, merging the caller's signal and a timeout, that can tell them apart. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** The typed error for why the signal fired (TimeoutError or AbortError), or undefined. */
  reason(): TimeoutError | AbortError | undefined;
  /** Throws the typed error when the signal has fired. */
  throwIfAborted(): void;
  /** Releases the timer and the listener on the caller's signal. */
  dispose(): void;
}

// setTimeout keeps its delay in a signed 32-bit int: anything longer fires after 1 ms.
const LONGEST_TIMER = 2 ** 31 - 1;

/** A timer for any delay, however long: long delays are chained under setTimeout's limit. */
export function longTimer(ms: number, fn: () => void): { clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  let left = Math.max(0, ms);
  const arm = () => {
    const step = Math.min(left, LONGEST_TIMER);
    left -= step;
    timer = setTimeout(left > 0 ? arm : fn, step);
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AbortSignal).aborted === 'boolean' &&
    typeof (value as AbortSignal).addEventListener === 'function'
  );
}

/**
 * Checks call options before anything is sent: a timeout is a number of ms from 0 up, or
 * Infinity; a signal is an AbortSignal. Anything else would otherwise fire at once after the
 * request left, or never.
 */
export function checkCallOptions(opts: CallOptions | undefined, backend?: string): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object') {
    throw new InvalidArgumentError({ message: 'Call options must be an object', argument: 'options', backend });
  }
  const { timeout, signal } = opts;
  if (timeout !== undefined && (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0)) {
    throw new InvalidArgumentError({
      message: `timeout must be a number of milliseconds from 0 up (or Infinity), not ${describe(timeout)}`,
      argument: 'timeout',
      backend,
    });
  }
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw new InvalidArgumentError({
      message: `signal must be an AbortSignal, not ${describe(signal)}`,
      argument: 'signal',
      backend,
    });
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return typeof value;
}

/** A deadline for `opts`; throws InvalidArgumentError for a bad timeout or signal. */
export function deadline(opts: CallOptions = {}, backend?: string): Deadline {
  checkCallOptions(opts, backend);
  const controller = new AbortController();
  let timer: { clear(): void } | undefined;
  let why: TimeoutError | AbortError | undefined;
  const fire = (error: TimeoutError | AbortError) => {
    if (why) return;
    why = error;
    controller.abort(error);
  };
  const onAbort = () =>
    fire(new AbortError({ message: 'The operation was aborted by the caller', backend, cause: opts.signal?.reason }));
  if (opts.signal) {
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });
  }
  const timeout = opts.timeout;
  if (timeout !== undefined && timeout !== Number.POSITIVE_INFINITY && !why) {
    timer = longTimer(timeout, () =>
      fire(new TimeoutError({ message: `Timed out after ${timeout} ms`, backend, timeout })),
    );
  }
  return {
    signal: controller.signal,
    reason: () => why,
    throwIfAborted() {
      if (why) throw why;
    },
    dispose() {
      timer?.clear();
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** Runs `fn` under a deadline built from `opts`, disposing it afterwards. Never throws synchronously. */
export async function withDeadline<T>(
  opts: CallOptions | undefined,
  backend: string | undefined,
  fn: (d: Deadline) => Promise<T>,
): Promise<T> {
  const d = deadline(opts, backend);
  try {
    d.throwIfAborted();
    return await fn(d);
  } catch (error) {
    throw d.reason() ?? error;
  } finally {
    d.dispose();
  }
}

/** Resolves after `ms`, or rejects with the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timer.clear();
      reject(signal?.reason);
    };
    const timer = longTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Picks the call options out of a caller's bag, so that nothing else in it travels along into a
 * request or another call.
 */
export function callOptions(opts: CallOptions | undefined): CallOptions {
  if (!opts) return {};
  const out: CallOptions = {};
  if (opts.signal !== undefined) out.signal = opts.signal;
  if (opts.timeout !== undefined) out.timeout = opts.timeout;
  return out;
}
