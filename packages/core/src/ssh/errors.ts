import { CoreError } from '../errors.js';

/** Something about SSH to a guest went wrong. Never carries a key, a password or stdin. */
export class SshError extends CoreError {
  override name = 'SshError';
  readonly code: string = 'ssh_failed';
  readonly status: number = 502;
  readonly host: string | undefined;
  constructor(init: { message: string; host?: string; cause?: unknown }) {
    super({ message: init.message, cause: init.cause });
    this.host = init.host;
  }
}

/** No SSH session could be made: refused, unreachable, no banner, the handshake failed. */
export class SshConnectError extends SshError {
  override name = 'SshConnectError';
  override readonly code = 'ssh_connect_failed';
}

/** The guest refused vmplane's key (or password). */
export class SshAuthError extends SshError {
  override name = 'SshAuthError';
  override readonly code = 'ssh_auth_failed';
}

/** The session ended before the command's exit status arrived. */
export class SshSessionError extends SshError {
  override name = 'SshSessionError';
  override readonly code = 'ssh_session_lost';
}

/** A command ran and exited non-zero (or on a signal). `tail` is its last output lines. */
export class SshCommandError extends SshError {
  override name = 'SshCommandError';
  override readonly code = 'ssh_command_failed';
  readonly exitCode: number;
  readonly signal: string | undefined;
  readonly tail: readonly string[];
  constructor(init: {
    message: string;
    host?: string;
    exitCode: number;
    signal?: string | undefined;
    tail?: readonly string[];
  }) {
    super(init);
    this.exitCode = init.exitCode;
    this.signal = init.signal;
    this.tail = init.tail ?? [];
  }
}

/** The SSH key in the data directory is unreadable, not a key, or not an ed25519 private key. */
export class SshKeyError extends CoreError {
  override name = 'SshKeyError';
  readonly code = 'ssh_key_invalid';
  readonly status = 500;
  readonly path: string;
  constructor(init: { message: string; path: string; cause?: unknown }) {
    super({ message: init.message, cause: init.cause });
    this.path = init.path;
  }
}
