import { PassThrough, type Readable, Writable } from 'node:stream';
import { inspect } from 'node:util';
import { ConnectionError, OperationFailedError, redactText } from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND } from '../errors.js';
import type { LxdOperation } from '../operation.js';
import type { Operation } from '../types/api.js';
import { StatusCode } from '../types/status-code.js';
import { checkSignal, checkTerminalSize } from './exec-options.js';
import { frameSendError, sendFrame } from './session-frames.js';

/** A running command. Streams are Node streams; `exit` resolves with the exit code. */
export interface ExecProcess {
  readonly operation: LxdOperation;
  /** Writable to the command's stdin; end() sends EOF. A write after the session closed errors. */
  readonly stdin: Writable;
  /** With a PTY, stdout carries the terminal output (stderr is empty). */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /**
   * The exit code: 143 after SIGTERM, 127 for a missing command, 128+n after signal n. Rejects with
   * ConnectionError when the connection to the command was lost, and with OperationFailedError
   * when LXD could not run it (an environment too large for the kernel, for one).
   */
  readonly exit: Promise<number>;
  /** Sends a signal (number, e.g. 15) to the command. */
  signal(signal: number): Promise<void>;
  /** Resizes the PTY (interactive only). */
  resize(width: number, height: number): Promise<void>;
  /** Ends the session: kills the command if still running and closes every socket. */
  close(): void;
  /** Whether the session was closed or has ended: stdin, signal and resize fail from then on. */
  readonly closed: boolean;
}

/** The secrets of an exec operation's websockets: stdin, stdout, stderr and control. */
export interface ExecSecrets {
  '0': string;
  '1'?: string;
  '2'?: string;
  control: string;
}

export interface ExecSessionOptions {
  interactive: boolean;
  signal?: AbortSignal | undefined;
}

/** One output websocket and the stream it feeds. */
interface Output {
  socket: WebSocket;
  stream: PassThrough;
  /** LXD marks the end of output with an empty text frame, then closes. */
  marked: boolean;
  /** Settles once the socket has ended (marker or close). */
  done: Promise<void>;
}

/** LXD connects the command only once every socket is open, and gives up after 5 s. */
const CONNECT_TIMEOUT = 5_000;
/** After close(), sockets that did not close by themselves are cut after this. */
const CLOSE_GRACE = 1_000;
/** How long output may still come after the operation ended, before the session stops waiting. */
const OUTPUT_GRACE = 5_000;
/** The exit code of SIGKILL, which LXD sends a command whose control socket dropped. */
const KILLED = 137;
const STDIN_EOF = '';

/**
 * A command running over LXD's exec websockets. The session owns every socket: leaving a
 * `for await` over stdout or stderr early kills the command and closes them, a lost connection
 * reaches the readers and `exit` as a ConnectionError, and everything is released once.
 * The websocket secrets live only in the operation; nothing printable here holds them.
 */
export class ExecSession implements ExecProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exit: Promise<number>;
  readonly #operation: LxdOperation;
  readonly #interactive: boolean;
  readonly #sockets: WebSocket[] = [];
  readonly #outputs: Output[] = [];
  #control: WebSocket | undefined;
  #input: WebSocket | undefined;
  /** The first sign that the connection broke (a socket closed before its end, or an error). */
  #lost: ConnectionError | undefined;
  /** close() was called, or the session has ended: nothing more is sent. */
  #closing = false;
  /** exit has its verdict and the streams are finished. */
  #settled = false;
  #socketsReleased = false;
  #resolveExit: (code: number) => void = () => {};
  #rejectExit: (error: unknown) => void = () => {};

  private constructor(operation: LxdOperation, interactive: boolean) {
    this.#operation = operation;
    this.#interactive = interactive;
    const output = (): PassThrough => {
      const stream: PassThrough = new PassThrough({
        // A reader that left before the end (break, throw, destroy): the command is not wanted.
        destroy: (error, callback) => {
          if (!stream.readableEnded && !this.#settled) this.close();
          callback(error);
        },
      });
      // Errors reach readers through the stream itself (for await, pipeline) and through exit;
      // this listener only keeps an unread stream's error from crashing the process.
      stream.on('error', () => {});
      return stream;
    };
    this.stdout = output();
    this.stderr = output();
    this.stdin = this.#makeStdin();
    this.exit = new Promise<number>((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    // Observed here so that nobody has to await it; awaiting still gets the rejection.
    this.exit.catch(() => {});
  }

  /** The LXD operation of the command. */
  get operation(): LxdOperation {
    return this.#operation;
  }

  /** Whether the session was closed or has ended. */
  get closed(): boolean {
    return this.#closing || this.#settled;
  }

  /**
   * Connects the operation's websockets and starts the session. On any failure every socket is
   * cut and the error is typed (the transport's ConnectionError, TimeoutError or AbortError).
   */
  static async open(operation: LxdOperation, secrets: ExecSecrets, opts: ExecSessionOptions): Promise<ExecSession> {
    const session = new ExecSession(operation, opts.interactive);
    const stdout = session.stdout as PassThrough;
    const stderr = session.stderr as PassThrough;
    const connect = (secret: string, output?: PassThrough) =>
      operation.websocket(secret, {
        signal: opts.signal,
        timeout: CONNECT_TIMEOUT,
        // Output is wired up as each socket is created: LXD starts the command once the last
        // socket connects, and its first frames can beat our own notice that every socket is open.
        onSocket: (ws) => session.#adopt(ws, output),
      });
    try {
      // With a PTY, fd 0 is bidirectional: the terminal's output comes back on it.
      const [control, input] = await Promise.all([
        connect(secrets.control),
        connect(secrets['0'], opts.interactive ? stdout : undefined),
        secrets['1'] && !opts.interactive ? connect(secrets['1'], stdout) : undefined,
        secrets['2'] && !opts.interactive ? connect(secrets['2'], stderr) : undefined,
      ]);
      session.#control = control;
      session.#input = input;
      if (opts.interactive) {
        stderr.end();
        // With a PTY, LXD ends the operation only once fd 0 is closed: it closes the control
        // socket when the command dies, then marks the end of output with an empty text frame.
        void session.#outputs[0]?.done.then(() => input.close());
        control.once('close', () => later(CLOSE_GRACE, () => input.close()));
      }
    } catch (error) {
      session.#closing = true;
      session.#settled = true;
      session.#releaseSockets(true);
      stdout.destroy();
      stderr.destroy();
      session.stdin.destroy();
      session.#rejectExit(error);
      throw error;
    }
    session.#verdict().then(session.#resolveExit, session.#rejectExit);
    return session;
  }

  async signal(signal: number): Promise<void> {
    await this.#sendControl({ command: 'signal', signal: checkSignal(signal) });
  }

  async resize(width: number, height: number): Promise<void> {
    const size = checkTerminalSize(width, height);
    await this.#sendControl({
      command: 'window-resize',
      args: { width: String(size.width), height: String(size.height) },
    });
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    const control = this.#control;
    if (!this.#settled && control && control.readyState === control.OPEN) {
      // Kill what may still run, then close the sockets (LXD also kills a command whose control
      // socket is cut, so the timer's terminate is a second way to the same end).
      control.send(JSON.stringify({ command: 'signal', signal: 9 }), () => this.#releaseSockets(false));
      later(200, () => this.#releaseSockets(false));
    } else this.#releaseSockets(false);
    for (const stream of [this.stdout, this.stderr] as PassThrough[]) {
      if (!stream.writableEnded && !stream.destroyed) stream.end();
    }
  }

  toJSON(): Record<string, unknown> {
    return { operation: this.#operation.id, interactive: this.#interactive, closed: this.closed };
  }

  [inspect.custom](): string {
    return `ExecSession ${inspect(this.toJSON())}`;
  }

  /** Registers a socket as soon as it exists; output sockets start feeding their stream at once. */
  #adopt(ws: WebSocket, stream: PassThrough | undefined): void {
    this.#sockets.push(ws);
    let failure: Error | undefined;
    ws.on('error', (error: Error) => {
      failure ??= error;
    });
    if (!stream) {
      ws.once('close', () => this.#noteLost(failure, false));
      return;
    }
    const output: Output = { socket: ws, stream, marked: false, done: Promise.resolve() };
    output.done = new Promise<void>((resolve) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary && data.length === 0) {
          output.marked = true;
          stream.end();
          resolve();
          return;
        }
        if (!stream.writableEnded && !stream.destroyed) stream.write(data);
      });
      ws.once('close', () => {
        this.#noteLost(failure, !output.marked);
        resolve();
      });
    });
    this.#outputs.push(output);
  }

  /** A socket closed. Before the end of its output, or with an error, the connection may be lost. */
  #noteLost(error: Error | undefined, early: boolean): void {
    if (this.#closing || this.#lost || (!early && !error)) return;
    const detail = error ? `: ${redactText(error.message)}` : '';
    this.#lost = new ConnectionError({
      message: `exec ${this.#operation.id}: the connection to the command was lost${detail}`,
      backend: BACKEND,
      sent: true,
      syscallCode: (error as NodeJS.ErrnoException | undefined)?.code,
    });
  }

  /**
   * Waits for the operation and the output, then decides: the exit code, or the error that
   * explains it. LXD kills a command whose websockets dropped (exit 137, output cut), so 137
   * after a socket ended early is a lost connection, not the command's own end.
   */
  async #verdict(): Promise<number> {
    let failure: Error | undefined;
    let code: number | undefined;
    try {
      const final = await this.#operation.settled();
      // Output may still be in flight when the operation ends; it is waited for, boundedly.
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(this.#outputs.map((o) => o.done)),
        new Promise<void>((resolve) => {
          grace = later(OUTPUT_GRACE, resolve);
        }),
      ]);
      clearTimeout(grace);
      const result = exitCodeOf(final);
      if (this.#lost && !this.#closing && (result === KILLED || result === undefined)) failure = this.#lost;
      else if (typeof result === 'number' && result >= 0) code = result;
      else failure = operationFailure(final);
    } catch (error) {
      failure = this.#lost ?? (error as Error);
    }
    this.#settled = true;
    this.#releaseSockets(false);
    for (const o of this.#outputs) finish(o.stream, failure);
    finish(this.stderr as PassThrough, failure);
    if (failure) throw failure;
    return code as number;
  }

  #makeStdin(): Writable {
    const closedError = () =>
      new ConnectionError({
        message: `exec ${this.#operation.id}: stdin is closed (the command ended or the session was closed); nothing was written`,
        backend: BACKEND,
        sent: false,
      });
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        const ws = this.#input;
        if (this.#closing || this.#settled || !ws || ws.readyState !== ws.OPEN) {
          callback(closedError());
          return;
        }
        ws.send(chunk, { binary: true }, (error) => callback(error ? frameSendError(this.#label, error) : null));
      },
      final: (callback) => {
        const ws = this.#input;
        // EOF to a stdin that is gone loses nothing; with a PTY there is no EOF frame.
        if (this.#interactive || this.#closing || !ws || ws.readyState !== ws.OPEN) return callback();
        // stdin EOF on LXD 5.0 is an empty text frame.
        ws.send(STDIN_EOF, { binary: false }, () => callback());
      },
    });
  }

  #sendControl(message: object): Promise<void> {
    return sendFrame(this.#label, this.#closing || this.#settled, this.#control, JSON.stringify(message), false);
  }

  get #label(): string {
    return `exec ${this.#operation.id}`;
  }

  /** Closes every socket (or cuts it, when `now`), once; one that does not close in time is cut. */
  #releaseSockets(now: boolean): void {
    if (this.#socketsReleased) return;
    this.#socketsReleased = true;
    for (const ws of this.#sockets) {
      if (now) ws.terminate();
      else if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    }
    const pending = this.#sockets.filter((ws) => ws.readyState !== ws.CLOSED);
    if (pending.length === 0) return;
    const cut = later(CLOSE_GRACE, () => {
      for (const ws of pending) ws.terminate();
    });
    let open = pending.length;
    for (const ws of pending) {
      ws.once('close', () => {
        if (--open === 0) clearTimeout(cut);
      });
    }
  }
}

/** A timer that never keeps the process alive. */
function later(ms: number, fn: () => void): NodeJS.Timeout {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return timer;
}

/** Ends a stream normally, or with the session's error when its output may be incomplete. */
function finish(stream: PassThrough, failure: Error | undefined): void {
  if (stream.destroyed || stream.readableEnded) return;
  if (failure && !stream.writableEnded) stream.destroy(failure);
  else if (!stream.writableEnded) stream.end();
}

function exitCodeOf(op: Operation): number | undefined {
  const code = (op.metadata as { return?: unknown } | null)?.return;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Why LXD could not run the command, without the operation's metadata: it holds the environment
 * (where callers put tokens) and the websocket secrets.
 */
export function operationFailure(op: Operation): OperationFailedError {
  const cancelled = op.status_code === StatusCode.Cancelled;
  const message = op.err ? redactText(op.err) : `exec ended as ${op.status} without an exit code`;
  return new OperationFailedError({
    status: cancelled ? 499 : 500,
    code: op.status_code,
    message,
    backend: BACKEND,
    body: { id: op.id, status: op.status, status_code: op.status_code, err: op.err },
    operationId: op.id,
  });
}
