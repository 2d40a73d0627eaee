/**
 * Every failure the CLI can report, and the one place that turns them into words for people and an
 * exit code (wrangler's rule: commands throw, `renderError` speaks). Messages never carry secrets:
 * the only texts shown are the server's own error messages, which it scrubs, and ours.
 */

/** Exit codes, documented in the README; scripts can tell these apart. */
export const ExitCode = {
  ok: 0,
  /** The server refused, or the operation ended with an error event. */
  failure: 1,
  /** Bad arguments: nothing was sent. */
  usage: 2,
  /** No server answered at the URL. */
  unreachable: 3,
  /** The token is missing, wrong, or lacks the scope. */
  auth: 4,
  /** The instance (or token) does not exist. */
  notFound: 5,
  /** Ctrl-C: 128 + SIGINT, as shells report it. */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure with a message meant for people and the exit code that goes with it. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CliError';
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    this.hint = opts.hint;
  }
}

/** Arguments refused before anything was sent. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.usage, hint: 'see `vmplane <command> --help`' });
    this.name = 'UsageError';
  }
}

/** The server answered with an error status; `code` is hypeman's machine code when it sent one. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, message: string, code: string | undefined) {
    super(message, { exitCode: exitCodeForStatus(status), ...hintForStatus(status) });
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Nothing answered at the URL: the usual cause is that no server was started. */
export class UnreachableError extends CliError {
  constructor(url: string, cause: unknown) {
    super(`cannot reach the vmplane server at ${url} (${describeCause(cause)})`, {
      exitCode: ExitCode.unreachable,
      hint: 'start one with `vmplane serve --data-dir <dir>`, or set VMPLANE_URL to where it runs',
      cause,
    });
    this.name = 'UnreachableError';
  }
}

function exitCodeForStatus(status: number): number {
  if (status === 401 || status === 403) return ExitCode.auth;
  if (status === 404) return ExitCode.notFound;
  return ExitCode.failure;
}

function hintForStatus(status: number): { hint?: string } {
  if (status === 401) return { hint: 'set VMPLANE_TOKEN, or run `vmplane serve`, which writes a client config' };
  if (status === 403)
    return { hint: 'this token lacks the scope; create one with `vmplane token create --scope write`' };
  return {};
}

/** The error code of a failed connection, from fetch's `cause` chain (ECONNREFUSED, ENOTFOUND, ...). */
export function describeCause(cause: unknown): string {
  let current: unknown = cause;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = current.cause;
  }
  return cause instanceof Error ? cause.message : String(cause);
}

/** True when fetch failed before any answer: the server is not there (as opposed to an HTTP error). */
export function isConnectionFailure(error: unknown): boolean {
  return error instanceof TypeError && /fetch failed/i.test(error.message);
}

/**
 * An error body as hypeman (`{code, message}`) or go-pve-qemu (`{success:false, message}`, or text)
 * sends it, reduced to what we show.
 */
export function parseErrorBody(status: number, text: string): { message: string; code: string | undefined } {
  try {
    const body: unknown = JSON.parse(text);
    if (body && typeof body === 'object') {
      const { message, code } = body as { message?: unknown; code?: unknown };
      if (typeof message === 'string' && message !== '')
        return { message, code: typeof code === 'string' ? code : undefined };
    }
  } catch {
    // Not JSON: go-pve-qemu's plain-text answers; the text is the message.
  }
  const trimmed = text.trim();
  return { message: trimmed === '' ? `the server answered ${status}` : trimmed, code: undefined };
}

/** An error of @vmplane/core's tree, known by shape so that this module need not load core. */
function isCoreError(error: unknown): error is Error & { code: string; status: number } {
  if (!(error instanceof Error)) return false;
  const { code, status } = error as { code?: unknown; status?: unknown };
  return typeof code === 'string' && /^[a-z_]+$/.test(code) && typeof status === 'number';
}

/** Writes the error for people (`error: <message> (<code>)` and a hint) and gives the exit code. */
export function renderError(error: unknown, write: (line: string) => void): number {
  if (error instanceof ApiError) {
    write(`error: ${error.message}${error.code ? ` (${error.code})` : ''}\n`);
  } else if (error instanceof CliError) {
    write(`error: ${error.message}\n`);
  } else if (isCoreError(error)) {
    // The store refused (token commands): core's errors carry hypeman's code and a status.
    return renderError(new ApiError(error.status, error.message, error.code), write);
  } else if (isConnectionFailure(error)) {
    return renderError(new UnreachableError('the configured URL', error), write);
  } else {
    // A bug or something unforeseen: say what it is, without a stack (VMPLANE_DEBUG=1 shows it).
    const text = error instanceof Error ? error.message : String(error);
    write(`error: ${text}\n`);
    if (process.env.VMPLANE_DEBUG && error instanceof Error && error.stack) write(`${error.stack}\n`);
    return ExitCode.failure;
  }
  if (error.hint) write(`hint: ${error.hint}\n`);
  return error.exitCode;
}
