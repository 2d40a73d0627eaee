import { type BackoffOptions, backoffDelay, type RetryPolicy } from './backoff.js';
import { sleep } from './call-options.js';
import { ApiError, ConnectionError, TlsVerificationError } from './errors.js';

/**
 * `Retry-After` in seconds, in either of its forms: delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`). A date in the past is 0; anything else is undefined.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  // Only the date forms HTTP allows start with a letter (IMF-fixdate, RFC 850, asctime).
  if (!/^[A-Za-z]/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** Statuses worth another try for a read: a proxy or the server was briefly unable to answer. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export interface RetryClassifier {
  /** Whether the request can be repeated without changing what it does (GET, HEAD). */
  idempotent: boolean;
  /** Statuses a read may be retried on (default {@link RETRYABLE_STATUS}). */
  statuses?: ReadonlySet<number> | undefined;
  /** The longest `Retry-After` worth waiting for, in ms (default 60 s); longer ones fail at once. */
  maxRetryAfter?: number | undefined;
}

/**
 * The retry rule every vmplane transport follows: a connection that failed before the request left
 * is retried for any method; a read is retried on a lost connection and on the statuses above,
 * after the server's `Retry-After` when it gave one. A mutation that may have reached the server
 * is never repeated, and a refused certificate is final.
 *
 * Returns the delay in ms the server asked for, `true` to use the backoff, or `false` not to retry.
 */
export function retryDecision(error: unknown, rule: RetryClassifier): number | boolean {
  if (error instanceof TlsVerificationError) return false;
  if (error instanceof ConnectionError) return !error.sent || rule.idempotent;
  if (error instanceof ApiError && rule.idempotent && (rule.statuses ?? RETRYABLE_STATUS).has(error.status)) {
    if (error.retryAfter === undefined) return true;
    const ms = error.retryAfter * 1000;
    return ms <= (rule.maxRetryAfter ?? 60_000) ? ms : false;
  }
  return false;
}

export interface RetryOptions extends RetryPolicy {
  signal?: AbortSignal | undefined;
  /** {@link retryDecision}'s answer for an error of attempt `attempt` (0-based). */
  decide(error: unknown, attempt: number): number | boolean;
  /** Told before each pause, for logs and counters. */
  onRetry?: ((info: { attempt: number; delay: number; error: unknown }) => void) | undefined;
}

/** Calls `fn` until it succeeds, the decision says stop, or `attempts` (default 3) are spent. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const attempts = Math.max(1, Math.floor(opts.attempts ?? 3));
  const backoff: BackoffOptions = opts;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (opts.signal?.aborted || attempt + 1 >= attempts) throw error;
      const decision = opts.decide(error, attempt);
      if (decision === false) throw error;
      const delay = decision === true ? backoffDelay(attempt, backoff) : decision;
      opts.onRetry?.({ attempt: attempt + 1, delay, error });
      await sleep(delay, opts.signal);
    }
  }
}
