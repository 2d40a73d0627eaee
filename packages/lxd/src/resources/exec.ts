import type { Readable } from 'node:stream';
import { callOptions, InvalidArgumentError, noteSent, path, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstanceName } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { LxdTransport } from '../transport.js';
import { type LxdCallOptions, Resource } from './base.js';
import { checkExecInput, checkStdin, checkTerminalSize, execBody, type StdinSource } from './exec-options.js';
import { type ExecResult, RecordedExec } from './exec-recorded.js';
import { type ExecProcess, type ExecSecrets, ExecSession } from './exec-session.js';

export type { ExecResult } from './exec-recorded.js';
export type { ExecProcess } from './exec-session.js';
export { ExecSession } from './exec-session.js';

export interface ExecOptions extends LxdCallOptions {
  command: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** Working directory: an absolute path. */
  cwd?: string;
  /** uid and gid to run as: 0 to 2^32-2. */
  user?: number;
  group?: number;
}

export interface ExecBufferedOptions extends ExecOptions {
  /** Fed to the command's stdin, then EOF. Without it stdin is closed at once. */
  stdin?: Buffer | Uint8Array | string | Readable;
  /**
   * How the output comes back. `record-output` (the default without `stdin`): LXD writes it to log
   * files that are read and removed afterwards; LXD before 5.14 can drop websocket output of a
   * command that ends at once under load (canonical/lxd#11422), never recorded output. It cannot
   * feed stdin, and LXD gives no way to signal a recorded command, so an abort or timeout ends
   * the call while the command runs on. `websockets` (the default with `stdin`): an abort or
   * timeout kills the command.
   */
  via?: 'record-output' | 'websockets';
}

export interface InteractiveOptions extends ExecOptions {
  /** Terminal size (default 80x24), integers from 1 to 65535. */
  width?: number;
  height?: number;
}

/** Running commands in an instance, over LXD's exec websockets or with recorded output. */
export class InstanceExec extends Resource {
  readonly #recorded: RecordedExec;

  constructor(transport: LxdTransport) {
    super(transport);
    this.#recorded = new RecordedExec(transport);
  }

  /** Runs a command to the end and returns its exit code and output. */
  async run(name: string, opts: ExecBufferedOptions): Promise<ExecResult> {
    checkExecInput(opts);
    const stdin = checkStdin(opts.stdin);
    const via = opts.via ?? (stdin === undefined ? 'record-output' : 'websockets');
    if (via === 'record-output') {
      if (stdin !== undefined) {
        throw new InvalidArgumentError({
          message: 'stdin needs the websockets exec: LXD feeds a recorded command no input',
          argument: 'stdin',
          backend: BACKEND,
        });
      }
      return this.#recorded.run(name, opts);
    }
    if (via !== 'websockets') {
      throw new InvalidArgumentError({
        message: `via must be 'record-output' or 'websockets', not ${JSON.stringify(via)}`,
        argument: 'via',
        backend: BACKEND,
      });
    }
    return withDeadline(callOptions(opts), BACKEND, async (d) => {
      const session = await this.#start(name, opts, false, d.signal);
      let onAbort = () => {};
      try {
        const aborted = new Promise<never>((_, reject) => {
          onAbort = () => reject(d.reason());
          d.signal.addEventListener('abort', onAbort, { once: true });
        });
        const output = Promise.all([session.exit, collect(session.stdout), collect(session.stderr)]);
        const fed = feed(session, stdin);
        const [exitCode, stdout, stderr] = await Promise.race([output, aborted, fed]);
        return { exitCode, stdout, stderr };
      } catch (error) {
        // The command ran (and is killed now): whatever it did before may have happened.
        noteSent(d.reason());
        throw error;
      } finally {
        d.signal.removeEventListener('abort', onAbort);
        session.close();
      }
    });
  }

  /** Starts a command with stdin/stdout/stderr as Node streams. */
  async spawn(name: string, opts: ExecOptions): Promise<ExecSession> {
    checkExecInput(opts);
    return withDeadline(callOptions(opts), BACKEND, (d) => this.#start(name, opts, false, d.signal));
  }

  /** Starts a command on a PTY: resize and signals go over the control socket. */
  async interactive(name: string, opts: InteractiveOptions): Promise<ExecSession> {
    checkExecInput(opts);
    checkTerminalSize(opts.width ?? 80, opts.height ?? 24);
    return withDeadline(callOptions(opts), BACKEND, (d) => this.#start(name, opts, true, d.signal));
  }

  /**
   * Runs a command with LXD recording its output to log files (no websockets), then reads and
   * removes those files. Works through proxies that do not carry websockets, and never loses
   * output. An abort or timeout ends the call; the command runs on (LXD cannot signal it), and
   * its log files are removed once it ends.
   */
  async recorded(name: string, opts: ExecOptions): Promise<ExecResult> {
    checkExecInput(opts);
    return this.#recorded.run(name, opts);
  }

  async #start(
    name: string,
    opts: InteractiveOptions,
    interactive: boolean,
    signal: AbortSignal,
  ): Promise<ExecSession> {
    const body: Record<string, unknown> = {
      ...execBody(opts),
      interactive,
      'wait-for-websocket': true,
      'record-output': false,
    };
    if (interactive) {
      body.width = opts.width ?? 80;
      body.height = opts.height ?? 24;
    }
    const op = await this.operation(
      'POST',
      path`/1.0/instances/${checkInstanceName(name)}/exec`,
      { project: opts.project, signal },
      { body },
    );
    return ExecSession.open(op, secretsOf(op), { interactive, signal });
  }
}

/** The websocket secrets LXD answered the exec POST with. */
function secretsOf(op: LxdOperation): ExecSecrets {
  const fds: Partial<ExecSecrets> = op.websocketSecrets();
  if (typeof fds['0'] !== 'string' || typeof fds.control !== 'string') {
    throw new InvalidArgumentError({
      message: 'LXD did not return exec websockets',
      argument: 'command',
      backend: BACKEND,
    });
  }
  return fds as ExecSecrets;
}

/**
 * Writes the input to the command's stdin, then EOF. Settles only when feeding fails: a command
 * that exits before reading all of its input is not an error (its exit code says what happened),
 * while a failing source stream ends the call with that stream's error.
 */
function feed(session: ExecProcess, input: StdinSource | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    // Writes after the command ended fail with a typed error; the exit code is what counts then.
    session.stdin.on('error', () => {
      if (input !== undefined && typeof input === 'object' && 'unpipe' in input) {
        input.unpipe(session.stdin);
        input.destroy();
      }
    });
    if (input === undefined) session.stdin.end();
    else if (typeof input === 'string' || input instanceof Uint8Array) session.stdin.end(Buffer.from(input));
    else {
      input.once('error', (error) => reject(error));
      input.pipe(session.stdin);
    }
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
