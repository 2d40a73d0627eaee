import type { ExecProcess } from '@vmplane/lxd';
import { InvalidRequestError } from '../../errors.js';
import type { GuestProcess } from '../provider.js';

/**
 * A command in an LXD instance, as core's GuestProcess, over the client's ExecSession. The
 * session owns its websockets: leaving a `for await` over stdout or stderr early kills the
 * command and closes them; `exit` rejects with the client's typed errors (ConnectionError when
 * the connection was lost, OperationFailedError when LXD could not run the command).
 */
export class LxdGuestProcess implements GuestProcess {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  readonly exit: Promise<number>;
  readonly #session: ExecProcess;
  readonly #tty: boolean;

  constructor(session: ExecProcess, tty: boolean) {
    this.#session = session;
    this.#tty = tty;
    // A write after the session ended errors on the stream too: write() reports it to its caller,
    // this listener only keeps an unheard one from crashing the process.
    session.stdin.on('error', () => {});
    this.stdout = session.stdout as AsyncIterable<Uint8Array>;
    this.stderr = tty ? empty() : (session.stderr as AsyncIterable<Uint8Array>);
    this.exit = session.exit;
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#session.stdin.write(typeof data === 'string' ? Buffer.from(data) : data, (error) =>
        error ? reject(error) : resolve(),
      );
    });
  }

  closeStdin(): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.#session.stdin;
      if (stdin.writableFinished) return resolve();
      const onError = (error: Error) => reject(error);
      stdin.once('error', onError);
      stdin.end(() => {
        stdin.off('error', onError);
        resolve();
      });
    });
  }

  async resize(rows: number, cols: number): Promise<void> {
    if (!this.#tty) {
      throw new InvalidRequestError({ message: 'resize needs a session started with tty', field: 'tty' });
    }
    await this.#session.resize(cols, rows);
  }

  async signal(signal: number): Promise<void> {
    await this.#session.signal(signal);
  }

  close(): void {
    this.#session.close();
  }

  /** Feeds `input` whole and closes stdin, in the background: errors surface through `exit`. */
  feed(input: string | Uint8Array | undefined): void {
    const stdin = this.#session.stdin;
    if (input === undefined) stdin.end();
    else stdin.end(typeof input === 'string' ? Buffer.from(input) : input);
  }
}

async function* empty(): AsyncIterable<Uint8Array> {}
