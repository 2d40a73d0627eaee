import { ApiError, InterruptionError, isBackendApiError } from '@vmplane/common';

export const BACKEND = 'lxd';

/**
 * Matches every error the LXD daemon answered: `status` is the HTTP status, `code` LXD's error_code.
 * The concrete class is still the status-specific one (NotFoundError, PreconditionFailedError, ...).
 */
export class LxdError extends ApiError {
  override name = 'LxdError';
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBackendApiError(value, BACKEND);
  }
}

/**
 * Notes on an interruption, and on the interruptions it was caused by, that the request may have
 * reached the daemon and which operation it started. A call under an outer deadline (a wait
 * inside `start()`, a request inside `upload()`) ends with the inner deadline's error, whose
 * `cause` is the outer one's: the caller sees the outer one, so both learn what happened.
 */
export function noteSentAll(error: unknown, operationId?: string): void {
  const seen = new Set<unknown>();
  for (let e: unknown = error; e instanceof InterruptionError && !seen.has(e); e = e.cause) {
    seen.add(e);
    e.noteSent(operationId);
  }
}
