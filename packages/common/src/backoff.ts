/** Exponential backoff with full jitter and a cap. */
export interface BackoffOptions {
  /** First delay in ms. */
  initial?: number;
  /** Upper bound on any delay in ms. */
  max?: number;
  /** Growth per attempt. */
  factor?: number;
  /** 0 (none) to 1 (full jitter): the share of the delay that is randomised. */
  jitter?: number;
  /** Source of randomness, injectable for tests. */
  random?: () => number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const initial = opts.initial ?? 100;
  const max = opts.max ?? 5_000;
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const random = opts.random ?? Math.random;
  const base = Math.min(max, initial * factor ** Math.max(0, attempt));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

export interface RetryPolicy extends BackoffOptions {
  /** Total attempts, the first included. */
  attempts?: number;
}
