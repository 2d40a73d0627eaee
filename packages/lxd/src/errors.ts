import { ApiError, isBackendApiError } from '@vmplane/common';

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
