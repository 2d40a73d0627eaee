import { AbortError, TimeoutError } from './errors.js';

/** Every async call in vmplane takes these. */
export interface CallOptions {
  /** The caller's signal: aborting it ends the call with an AbortError. */
  signal?: AbortSignal | undefined;
  /** Milliseconds before the call ends with a TimeoutError. */
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

export function deadline(opts: CallOptions = {}, backend?: string): Deadline {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
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
    timer = setTimeout(
      () => fire(new TimeoutError({ message: `Timed out after ${timeout} ms`, backend, timeout })),
      Math.max(0, timeout),
    );
  }
  return {
    signal: controller.signal,
    reason: () => why,
    throwIfAborted() {
      if (why) throw why;
    },
    dispose() {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** Runs `fn` under a deadline built from `opts`, disposing it afterwards. */
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
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
