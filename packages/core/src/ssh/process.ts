import { constants } from 'node:os';
import type { ClientChannel } from 'ssh2';
import type { ExecRequest, GuestProcess } from '../providers/provider.js';
import type { SshConnection } from './connect.js';
import { SshSessionError } from './errors.js';
import { signalExitCode } from './run.js';
import { commandLine } from './shell.js';

/** Pause the channel when this much output waits for a reader. */
const HIGH_WATER = 1024 * 1024;

/**
 * Bytes waiting for a reader. Leaving the `for await` early calls `onReturn`, which ends the
 * session: an output stream owns its connection.
 */
class ByteQueue implements AsyncIterable<Uint8Array> {
  readonly #chunks: Uint8Array[] = [];
  #size = 0;
  #done = false;
  #error: unknown;
  #wake: (() => void) | undefined;
  constructor(
    private readonly pause: () => void,
    private readonly resume: () => void,
    private readonly onReturn: () => void,
  ) {}

  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
    if (this.#size > HIGH_WATER) this.pause();
    this.#wake?.();
  }
  end(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    let finished = false;
    try {
      for (;;) {
        const chunk = this.#chunks.shift();
        if (chunk) {
          this.#size -= chunk.byteLength;
          if (this.#size <= HIGH_WATER / 2) this.resume();
          yield chunk;
          continue;
        }
        if (this.#done) {
          finished = true;
          if (this.#error) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
      }
    } finally {
      if (!finished) this.onReturn();
    }
  }
}

function signalName(n: number): string | undefined {
  for (const [name, value] of Object.entries(constants.signals)) if (value === n) return name.replace(/^SIG/, '');
  return undefined;
}

/**
 * Starts `request` on an open connection as a GuestProcess. The connection belongs to the
 * process from then on: it closes when the command has exited and its output was read, when a
 * reader leaves early, or on `close()`.
 */
export function startSshProcess(conn: SshConnection, request: ExecRequest): Promise<GuestProcess> {
  const line = commandLine(request.command, {
    ...(request.env ? { env: request.env } : {}),
    ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
  });
  const pty = request.tty ? { rows: request.rows ?? 24, cols: request.cols ?? 80, term: 'xterm-256color' } : undefined;
  return new Promise<GuestProcess>((resolve, reject) => {
    conn.client.exec(line, pty ? { pty } : {}, (error, channel: ClientChannel) => {
      if (error) {
        conn.close();
        reject(new SshSessionError({ message: `the guest refused to start the command: ${error.message}` }));
        return;
      }
      const close = () => {
        try {
          channel.close();
        } catch {
          // Already closed.
        }
        conn.close();
      };
      const stdout = new ByteQueue(
        () => channel.pause(),
        () => channel.resume(),
        close,
      );
      const stderr = new ByteQueue(
        () => channel.stderr.pause(),
        () => channel.stderr.resume(),
        close,
      );
      let code: number | undefined;
      const exit = new Promise<number>((resolveExit, rejectExit) => {
        channel.on('exit', (c: number | null, signal?: string) => {
          code = typeof c === 'number' ? c : signalExitCode(signal);
        });
        channel.on('close', () => {
          stdout.end();
          stderr.end();
          conn.close();
          if (code === undefined)
            rejectExit(new SshSessionError({ message: 'the session ended before the command exited' }));
          else resolveExit(code);
        });
      });
      // Nobody may await exit (a caller that only reads output): a lost session must not crash us.
      exit.catch(() => {});
      channel.on('data', (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      conn.client.on('error', (e: Error) => {
        stdout.end(e);
        stderr.end(e);
      });
      if (request.stdin !== undefined && !request.interactive) {
        channel.end(typeof request.stdin === 'string' ? request.stdin : Buffer.from(request.stdin));
      } else if (!request.interactive) {
        channel.end();
      }
      resolve({
        stdout,
        stderr,
        write: (data) =>
          new Promise<void>((res, rej) => {
            channel.write(typeof data === 'string' ? data : Buffer.from(data), (e?: Error | null) =>
              e ? rej(e) : res(),
            );
          }),
        closeStdin: async () => {
          channel.end();
        },
        resize: async (rows, cols) => {
          channel.setWindow(rows, cols, 0, 0);
        },
        signal: async (n) => {
          const name = signalName(n);
          if (!name) throw new SshSessionError({ message: `no signal numbered ${n}` });
          channel.signal(name);
        },
        exit,
        close,
      });
    });
  });
}
