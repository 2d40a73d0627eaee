import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { AbortError, type CallOptions, deadline, TimeoutError } from '@vmplane/common';
import type { ClientChannel } from 'ssh2';
import { connectSsh, type SshConnection, type SshTarget } from './connect.js';
import { SshCommandError, SshSessionError } from './errors.js';

/**
 * One command over SSH. The command line is a string the guest's shell reads: it must never hold
 * a secret (process lists and shell histories show it). Secrets go on `stdin`, which is written
 * whole and then closed.
 */

export type OutputStream = 'stdout' | 'stderr';

export interface RunOptions extends CallOptions {
  /** Written to the command's stdin, then stdin is closed. Never logged. */
  stdin?: string | Uint8Array;
  /** Each output line as it comes (without its newline); awaited in order. */
  onLine?: (line: string, stream: OutputStream) => void | Promise<void>;
  /** How many last lines an SshCommandError keeps (default 20). */
  tail?: number;
}

export interface RunResult {
  exitCode: number;
  /** Set when the command ended on a signal (`KILL`, `TERM`). */
  signal?: string;
  /** The last output lines, both streams, in order. */
  tail: string[];
}

/** Splits a byte stream into lines, decoding UTF-8 across chunk boundaries. */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  #rest = '';
  constructor(readonly emit: (line: string) => void) {}

  push(chunk: Buffer): void {
    const lines = (this.#rest + this.#decoder.write(chunk)).split('\n');
    this.#rest = lines.pop() ?? '';
    for (const line of lines) this.emit(line.replace(/\r$/, ''));
  }

  end(): void {
    const last = this.#rest + this.#decoder.end();
    this.#rest = '';
    if (last !== '') this.emit(last.replace(/\r$/, ''));
  }
}

/** Runs `command` on an open connection; resolves with its exit code, whatever it is. */
export function runOnConnection(conn: SshConnection, command: string, opts: RunOptions = {}): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    let d: ReturnType<typeof deadline>;
    try {
      d = deadline(opts);
    } catch (error) {
      reject(error);
      return;
    }
    const keep = opts.tail ?? 20;
    const tail: string[] = [];
    let chain: Promise<void> = Promise.resolve();
    let lineError: unknown;
    const line = (stream: OutputStream) => (text: string) => {
      tail.push(text);
      if (tail.length > keep) tail.shift();
      const onLine = opts.onLine;
      if (onLine) {
        chain = chain
          .then(() => onLine(text, stream))
          .catch((error: unknown) => {
            lineError ??= error;
          });
      }
    };
    const out = new LineSplitter(line('stdout'));
    const err = new LineSplitter(line('stderr'));
    let channel: ClientChannel | undefined;
    let exit: { code: number; signal?: string } | undefined;
    let settled = false;
    const finish = (error: unknown) => {
      if (settled) return;
      settled = true;
      d.signal.removeEventListener('abort', onAbort);
      d.dispose();
      out.end();
      err.end();
      void chain.then(() => {
        if (error) reject(error);
        else if (lineError) reject(lineError);
        else if (!exit) reject(new SshSessionError({ message: `the session ended before ${quote(command)} exited` }));
        else resolve({ exitCode: exit.code, ...(exit.signal ? { signal: exit.signal } : {}), tail: [...tail] });
      });
    };
    const onAbort = () => {
      try {
        channel?.signal('KILL');
        channel?.close();
      } catch {
        // The channel may be gone already.
      }
      const why = d.reason();
      finish(why instanceof TimeoutError || why instanceof AbortError ? why : new AbortError({ message: 'aborted' }));
    };
    if (d.signal.aborted) {
      onAbort();
      return;
    }
    d.signal.addEventListener('abort', onAbort, { once: true });
    conn.client.exec(command, (error, ch) => {
      if (error) {
        finish(new SshSessionError({ message: `the guest refused to run ${quote(command)}: ${error.message}` }));
        return;
      }
      if (settled) {
        ch.close();
        return;
      }
      channel = ch;
      ch.on('data', (chunk: Buffer) => out.push(chunk));
      ch.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      ch.on('exit', (code: number | null, signal?: string) => {
        exit = typeof code === 'number' ? { code } : { code: signalExitCode(signal), signal: signal ?? 'unknown' };
      });
      ch.on('close', () => finish(undefined));
      ch.on('error', (e: Error) => finish(new SshSessionError({ message: `channel error: ${e.message}`, cause: e })));
      if (opts.stdin !== undefined) ch.end(typeof opts.stdin === 'string' ? opts.stdin : Buffer.from(opts.stdin));
      else ch.end();
    });
  });
}

/** A shell's exit code for a command killed by `signal` (128 + its number), or -1 when unknown. */
export function signalExitCode(signal: string | undefined): number {
  const n = signal ? (constants.signals as Record<string, number | undefined>)[`SIG${signal}`] : undefined;
  return n === undefined ? -1 : 128 + n;
}

/** The first words of a command, for messages: enough to say which, never a whole script. */
export function quote(command: string): string {
  const short = command.length > 60 ? `${command.slice(0, 57)}...` : command;
  return JSON.stringify(short);
}

/** Like runOnConnection, but a non-zero exit is an SshCommandError carrying the output's tail. */
export async function runCheckedOnConnection(
  conn: SshConnection,
  command: string,
  opts: RunOptions = {},
): Promise<RunResult> {
  const result = await runOnConnection(conn, command, opts);
  if (result.exitCode !== 0) {
    throw new SshCommandError({
      message: `${quote(command)} exited with ${result.signal ? `signal ${result.signal}` : result.exitCode}`,
      exitCode: result.exitCode,
      signal: result.signal,
      tail: result.tail,
    });
  }
  return result;
}

/** Connects, runs one command and disconnects. `timeout` covers all of it. */
export async function runSsh(target: SshTarget, command: string, opts: RunOptions = {}): Promise<RunResult> {
  const d = deadline(opts);
  try {
    const conn = await connectSsh(target, { signal: d.signal });
    try {
      return await runOnConnection(conn, command, { ...opts, signal: d.signal, timeout: undefined });
    } finally {
      conn.close();
    }
  } catch (error) {
    throw d.reason() ?? error;
  } finally {
    d.dispose();
  }
}
