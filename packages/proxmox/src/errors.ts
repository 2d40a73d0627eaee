import { ApiError, type ApiErrorInit, isBackendApiError, UnauthorizedError } from '@vmplane/common';

/** The backend name every error raised by this package carries. */
export const BACKEND = 'proxmox';

/**
 * Matches any ApiError raised by this client, whatever its status subclass, so that
 * `err instanceof ProxmoxError` and `err instanceof NotFoundError` both hold.
 */
export class ProxmoxError extends ApiError {
  override name = 'ProxmoxError';
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBackendApiError(value, BACKEND);
  }
}

/**
 * The account needs a second factor. PVE answered the password with a half ticket that only
 * opens the TFA step; pass `otp` (a TOTP code or a function returning one) or use an API token.
 */
export class TfaRequiredError extends UnauthorizedError {
  override name = 'TfaRequiredError';
  /** The second factors PVE offered (totp, webauthn, recovery, yubico, u2f), when it said. */
  readonly methods: readonly string[];
  constructor(init: Omit<ApiErrorInit, 'status'> & { methods?: readonly string[] }) {
    super({ ...init, status: 401, backend: BACKEND });
    this.methods = init.methods ?? [];
  }
}
