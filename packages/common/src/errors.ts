/**
 * The one error tree every vmplane package throws from.
 *
 *   VmplaneError
 *   ├── ApiError            the backend answered with an error (status, code, body, requestId)
 *   │   ├── BadRequestError / ValidationError (400, per-field map)
 *   │   ├── UnauthorizedError (401), ForbiddenError (403), NotFoundError (404)
 *   │   ├── ConflictError (409), PreconditionFailedError (412), RateLimitedError (429)
 *   │   ├── ServerError (5xx)
 *   │   └── OperationFailedError   a long-running operation/task ended badly
 *   ├── InvalidArgumentError  refused locally, before anything was sent
 *   ├── ConnectionError       no answer: refused, reset (`sent` says if the request may have left)
 *   │   └── TlsVerificationError    the server's certificate was refused: final, nothing was sent
 *   │       └── FingerprintMismatchError   it is not the pinned one
 *   ├── TimeoutError          our own deadline passed      (`sent`, `operationId`: what may have happened)
 *   └── AbortError            the caller's signal fired    (`sent`, `operationId`: what may have happened)
 *
 * Backend packages export a class named after the backend (LxdError, ProxmoxError) that matches
 * any ApiError of that backend, so `instanceof NotFoundError` and `instanceof LxdError` both hold.
 */

export interface VmplaneErrorInit {
  message: string;
  backend?: string | undefined;
  cause?: unknown;
}

export class VmplaneError extends Error {
  override name = 'VmplaneError';
  /** Which backend the error came from: 'lxd', 'proxmox', 'microvm', ... */
  readonly backend: string | undefined;

  constructor(init: VmplaneErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.backend = init.backend;
  }
}

export interface ApiErrorInit extends VmplaneErrorInit {
  status: number;
  /** Backend's own error code (LXD error_code); defaults to the status. */
  code?: number | undefined;
  body?: unknown;
  requestId?: string | undefined;
  method?: string | undefined;
  path?: string | undefined;
  /** Per-parameter messages, as Proxmox answers a 400. */
  errors?: Readonly<Record<string, string>> | undefined;
  retryAfter?: number | undefined;
}

export class ApiError extends VmplaneError {
  override name = 'ApiError';
  readonly status: number;
  readonly code: number;
  readonly body: unknown;
  readonly requestId: string | undefined;
  readonly method: string | undefined;
  readonly path: string | undefined;
  /** Per-field messages (empty when the backend gave none). */
  readonly errors: Readonly<Record<string, string>>;
  /** Seconds the server asked us to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;

  constructor(init: ApiErrorInit) {
    super(init);
    this.status = init.status;
    this.retryAfter = init.retryAfter;
    this.code = init.code ?? init.status;
    this.body = init.body;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
    this.errors = init.errors ?? {};
  }
}

export class BadRequestError extends ApiError {
  override name = 'BadRequestError';
}
/** A 400 whose answer names the offending fields. */
export class ValidationError extends BadRequestError {
  override name = 'ValidationError';
}
export class UnauthorizedError extends ApiError {
  override name = 'UnauthorizedError';
}
export class ForbiddenError extends ApiError {
  override name = 'ForbiddenError';
}
export class NotFoundError extends ApiError {
  override name = 'NotFoundError';
}
export class ConflictError extends ApiError {
  override name = 'ConflictError';
}
export class PreconditionFailedError extends ApiError {
  override name = 'PreconditionFailedError';
}
export class RateLimitedError extends ApiError {
  override name = 'RateLimitedError';
}
export class ServerError extends ApiError {
  override name = 'ServerError';
}

export interface OperationFailedErrorInit extends ApiErrorInit {
  operationId: string;
  /** Last lines of the task log, when the backend keeps one (Proxmox). */
  logTail?: readonly string[] | undefined;
}

/** A long-running operation (LXD operation, Proxmox task) that finished with a failure or was cancelled. */
export class OperationFailedError extends ApiError {
  override name = 'OperationFailedError';
  readonly operationId: string;
  readonly logTail: readonly string[];
  constructor(init: OperationFailedErrorInit) {
    super(init);
    this.operationId = init.operationId;
    this.logTail = init.logTail ?? [];
  }
}

export interface InvalidArgumentErrorInit extends VmplaneErrorInit {
  /** The argument (or field) that was refused. */
  argument: string;
}

/** Input refused locally: nothing was sent to the backend. */
export class InvalidArgumentError extends VmplaneError {
  override name = 'InvalidArgumentError';
  readonly argument: string;
  constructor(init: InvalidArgumentErrorInit) {
    super(init);
    this.argument = init.argument;
  }
}

export interface ConnectionErrorInit extends VmplaneErrorInit {
  /** Whether the request may have reached the server (false: safe to retry anything). */
  sent: boolean;
  syscallCode?: string | undefined;
}

export class ConnectionError extends VmplaneError {
  override name = 'ConnectionError';
  readonly sent: boolean;
  readonly syscallCode: string | undefined;
  constructor(init: ConnectionErrorInit) {
    super(init);
    this.sent = init.sent;
    this.syscallCode = init.syscallCode;
  }
}

export interface TlsVerificationErrorInit extends VmplaneErrorInit {
  /** OpenSSL's or Node's code for the refusal (`DEPTH_ZERO_SELF_SIGNED_CERT`, ...). */
  syscallCode?: string | undefined;
}

/**
 * The server's certificate was refused. Final: retrying cannot change the certificate, and no byte
 * of the request was sent, since the check happens before the request is handed the connection.
 */
export class TlsVerificationError extends ConnectionError {
  override name = 'TlsVerificationError';
  constructor(init: TlsVerificationErrorInit) {
    super({ ...init, sent: false });
  }
}

/** The server's certificate is not the pinned one. */
export class FingerprintMismatchError extends TlsVerificationError {
  override name = 'FingerprintMismatchError';
  readonly code = 'ERR_TLS_CERT_FINGERPRINT_MISMATCH';
  /** SHA-256 fingerprints, lower-case hex without colons. */
  readonly expected: string;
  readonly actual: string;
  constructor(init: VmplaneErrorInit & { expected: string; actual: string }) {
    super({ ...init, syscallCode: 'ERR_TLS_CERT_FINGERPRINT_MISMATCH' });
    this.expected = init.expected;
    this.actual = init.actual;
  }
}

export interface InterruptionInit extends VmplaneErrorInit {
  /** Whether the request may already have reached the server. */
  sent?: boolean | undefined;
  /** The backend's id of the long operation the call had started, when one was known. */
  operationId?: string | undefined;
}

/**
 * A call that ended on our side (timeout or abort) while the server may have acted on it. The
 * transport fills in `sent` and `operationId` as it learns them, so a caller can tell "nothing
 * happened" from "look for what it did" and find or undo it.
 */
export class InterruptionError extends VmplaneError {
  override name = 'InterruptionError';
  /** True when the request may have reached the server before the call ended. */
  readonly sent: boolean;
  /** The operation (LXD operation, Proxmox UPID, job) the call had started, when known. */
  readonly operationId: string | undefined;
  readonly #base: string;

  constructor(init: InterruptionInit) {
    super(init);
    this.#base = init.message;
    this.sent = init.sent ?? false;
    this.operationId = init.operationId;
    this.#describe();
  }

  /** Records that the request may have reached the server; it never goes back to unsent. */
  noteSent(operationId?: string): void {
    const self = this as { sent: boolean; operationId: string | undefined };
    self.sent = true;
    if (operationId) self.operationId = operationId;
    this.#describe();
  }

  #describe(): void {
    let tail = '';
    if (this.operationId) tail = `; operation ${this.operationId} had started and may still run`;
    else if (this.sent) tail = '; the request had been sent, so the server may have acted on it';
    this.message = `${this.#base}${tail}`;
  }
}

export class TimeoutError extends InterruptionError {
  override name = 'TimeoutError';
  readonly timeout: number;
  constructor(init: InterruptionInit & { timeout: number }) {
    super(init);
    this.timeout = init.timeout;
  }
}

export class AbortError extends InterruptionError {
  override name = 'AbortError';
}

/** Marks a timeout or abort as possibly acted on by the server; other errors are left alone. */
export function noteSent(error: unknown, operationId?: string): void {
  if (error instanceof InterruptionError) error.noteSent(operationId);
}

/** Picks the ApiError subclass for an HTTP status. */
export function apiErrorFromStatus(init: ApiErrorInit): ApiError {
  const { status } = init;
  if (status === 400) {
    return init.errors && Object.keys(init.errors).length > 0 ? new ValidationError(init) : new BadRequestError(init);
  }
  if (status === 401) return new UnauthorizedError(init);
  if (status === 403) return new ForbiddenError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 409) return new ConflictError(init);
  if (status === 412) return new PreconditionFailedError(init);
  if (status === 429) return new RateLimitedError(init);
  if (status >= 500) return new ServerError(init);
  return new ApiError(init);
}

/** The predicate behind LxdError / ProxmoxError: an ApiError raised by the named backend. */
export function isBackendApiError(value: unknown, backend: string): value is ApiError {
  return value instanceof ApiError && value.backend === backend;
}
