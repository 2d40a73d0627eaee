import { VmplaneError, type VmplaneErrorInit } from '@vmplane/common';

/**
 * Core's errors, in the one tree. Each carries the code hypeman's `{code, message}` body uses, so
 * the server maps an error to its answer in one place, by class.
 */
export abstract class CoreError extends VmplaneError {
  /** hypeman's error code (`not_found`, `invalid_state`, ...). */
  abstract readonly code: string;
  /** The HTTP status the server answers with. */
  abstract readonly status: number;
}

/** The provider lacks a capability (`snapshots`, `standby`, ...). */
export class UnsupportedError extends CoreError {
  override name = 'UnsupportedError';
  readonly code = 'not_supported';
  readonly status = 501;
  readonly capability: string;
  readonly provider: string;
  constructor(init: { provider: string; capability: string; message?: string }) {
    super({ message: init.message ?? `provider ${init.provider} does not support ${init.capability}` });
    this.capability = init.capability;
    this.provider = init.provider;
  }
}

/** The instance's state does not allow the action (hypeman's 409 `invalid_state`). */
export class InvalidStateError extends CoreError {
  override name = 'InvalidStateError';
  readonly code = 'invalid_state';
  readonly status = 409;
  readonly state: string;
  readonly action: string;
  constructor(init: { state: string; action: string; message?: string }) {
    super({ message: init.message ?? `cannot ${init.action} an instance that is ${init.state}` });
    this.state = init.state;
    this.action = init.action;
  }
}

/** No instance, operation, token, ... with that id or name. */
export class NotFoundInStoreError extends CoreError {
  override name = 'NotFoundInStoreError';
  readonly code = 'not_found';
  readonly status = 404;
  readonly what: string;
  readonly key: string;
  constructor(init: { what: string; key: string }) {
    super({ message: `${init.what} ${JSON.stringify(init.key)} not found` });
    this.what = init.what;
    this.key = init.key;
  }
}

/** A name is taken, an idempotency key was reused with another body, ... */
export class AlreadyExistsError extends CoreError {
  override name = 'AlreadyExistsError';
  readonly code = 'already_exists';
  readonly status = 409;
}

/** An idempotency key came back with a different body. */
export class IdempotencyConflictError extends CoreError {
  override name = 'IdempotencyConflictError';
  readonly code = 'idempotency_conflict';
  readonly status = 409;
}

/** Input refused by core's own rules (a field, a range). Nothing was changed. */
export class InvalidRequestError extends CoreError {
  override name = 'InvalidRequestError';
  readonly code = 'invalid_request';
  readonly status = 400;
  readonly field: string | undefined;
  constructor(init: VmplaneErrorInit & { field?: string }) {
    super(init);
    this.field = init.field;
  }
}

/** Nothing left to allocate: the VMID range or the CIDR pool is full. */
export class ExhaustedError extends CoreError {
  override name = 'ExhaustedError';
  readonly code = 'exhausted';
  readonly status = 409;
}

/** A guest did not become ready by its deadline: always an error, never a success. */
export class ReadinessTimeoutError extends CoreError {
  override name = 'ReadinessTimeoutError';
  readonly code = 'readiness_timeout';
  readonly status = 504;
}

/** The operation was cancelled (`POST /v1/operations/{id}/cancel`, Ctrl-C in the CLI). */
export class CancelledError extends CoreError {
  override name = 'CancelledError';
  readonly code = 'cancelled';
  readonly status = 409;
}

/** A prefix or name matches more than one instance (hypeman's 409 `ambiguous`). */
export class AmbiguousError extends CoreError {
  override name = 'AmbiguousError';
  readonly code = 'ambiguous';
  readonly status = 409;
}
