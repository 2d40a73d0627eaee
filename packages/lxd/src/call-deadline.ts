import {
  type AbortError,
  type CallOptions,
  deadline,
  type HttpResponse,
  InterruptionError,
  longTimer,
  TimeoutError,
} from '@vmplane/common';
import { BACKEND, noteSentAll } from './errors.js';

/**
 * The deadline of one call. The caller's signal and timeout bound all of it; the transport's
 * default timeout (used when the caller gave none) bounds it until `answered()`. It also records
 * what the daemon may have seen, so that an interruption says whether the request was sent and
 * which operation it had started.
 */
export interface CallDeadline {
  readonly signal: AbortSignal;
  /** A response, or a connection that may have carried the request, was seen. */
  sent(operationId?: string): void;
  /** The answer began: from now on only the caller's limits apply. */
  answered(): void;
  /** The call's error: the interruption (told what was sent) when the deadline fired, else `error`. */
  outcome(error: unknown): unknown;
  dispose(): void;
}

export function callDeadline(req: CallOptions, fallback: number): CallDeadline {
  const caller = deadline({ signal: req.signal, timeout: req.timeout }, BACKEND);
  const controller = new AbortController();
  let why: TimeoutError | AbortError | undefined;
  let sent = false;
  let operationId: string | undefined;
  const fire = (error: TimeoutError | AbortError) => {
    if (why) return;
    why = error;
    if (sent) noteSentAll(why, operationId);
    controller.abort(error);
  };
  const onCaller = () => {
    const reason = caller.reason();
    if (reason) fire(reason);
  };
  if (caller.signal.aborted) onCaller();
  else caller.signal.addEventListener('abort', onCaller, { once: true });
  let timer =
    req.timeout === undefined && fallback !== Number.POSITIVE_INFINITY
      ? longTimer(fallback, () =>
          fire(new TimeoutError({ message: `Timed out after ${fallback} ms`, backend: BACKEND, timeout: fallback })),
        )
      : undefined;
  return {
    signal: controller.signal,
    sent(id) {
      sent = true;
      if (id) operationId = id;
      if (why) noteSentAll(why, operationId);
    },
    answered() {
      timer?.clear();
      timer = undefined;
    },
    outcome: (error) => {
      if (!why) return error;
      if (sent || (error instanceof InterruptionError && error.sent)) noteSentAll(why, operationId);
      return why;
    },
    dispose() {
      timer?.clear();
      caller.signal.removeEventListener('abort', onCaller);
      caller.dispose();
    },
  };
}

/** The answer of a raw call, releasing the call's deadline once its body is read or dropped. */
export function ownedBy(res: HttpResponse, release: () => void): HttpResponse {
  let released = false;
  const done = () => {
    if (released) return;
    released = true;
    release();
  };
  const after = <T>(p: Promise<T>) => p.finally(done);
  return {
    status: res.status,
    statusMessage: res.statusMessage,
    headers: res.headers,
    get stream() {
      const stream = res.stream;
      if (stream.destroyed) done();
      else stream.once('close', done);
      return stream;
    },
    buffer: () => after(res.buffer()),
    text: () => after(res.text()),
    json: <T>() => after(res.json<T>()),
    discard: () => {
      res.discard();
      done();
    },
  };
}
