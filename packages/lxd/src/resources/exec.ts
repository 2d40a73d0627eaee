import { PassThrough, type Readable, Writable } from 'node:stream';
import { AbortError, deadline, InvalidArgumentError, path } from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND } from '../errors.js';
import { checkInstanceName } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { Operation } from '../types/api.js';
import { type LxdCallOptions, Resource } from './base.js';

export interface ExecOptions extends LxdCallOptions {
  command: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  user?: number;
  group?: number;
}

export interface ExecBufferedOptions extends ExecOptions {
  /** Fed to the command's stdin, then EOF. Without it stdin is closed at once. */
  stdin?: Buffer | string | Readable;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface InteractiveOptions extends ExecOptions {
  /** Terminal size (default 80x24). */
  width?: number;
  height?: number;
}

/** A running command. Streams are Node streams; `exit` resolves with the exit code. */
export interface ExecProcess {
  readonly operation: LxdOperation;
  /** Writable to the command's stdin; end() sends EOF. */
  readonly stdin: Writable;
  /** With a PTY, stdout carries the terminal output (stderr is empty). */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The exit code: 143 after SIGTERM, 127 for a missing command, 128+n after signal n. */
  readonly exit: Promise<number>;
  /** Sends a signal (number, e.g. 15) to the command. */
  signal(signal: number): Promise<void>;
  /** Resizes the PTY (interactive only). */
  resize(width: number, height: number): Promise<void>;
  /** Ends the session: kills the command if still running and closes every socket. */
  close(): void;
}

interface Fds {
  '0': string;
  '1'?: string;
  '2'?: string;
  control: string;
}

const STDIN_EOF = '';

/** Running commands in an instance, over LXD's exec websockets. */
export class InstanceExec extends Resource {
  /** Runs a command to the end and returns its exit code and output. */
  async run(name: string, opts: ExecBufferedOptions): Promise<ExecResult> {
    const proc = await this.spawn(name, opts);
    const stdout = collect(proc.stdout);
    const stderr = collect(proc.stderr);
    const input = opts.stdin;
    if (input === undefined) proc.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) proc.stdin.end(input);
    else input.pipe(proc.stdin);
    const d = deadline({ signal: opts.signal, timeout: opts.timeout }, BACKEND);
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        proc.close();
        reject(d.reason());
      };
      d.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const [exitCode, out, err] = await Promise.race([Promise.all([proc.exit, stdout, stderr]), aborted]);
      return { exitCode, stdout: out, stderr: err };
    } catch (error) {
      throw d.reason() ?? error;
    } finally {
      d.signal.removeEventListener('abort', onAbort);
      d.dispose();
      proc.close();
    }
  }

  /** Starts a command with stdin/stdout/stderr as Node streams. */
  async spawn(name: string, opts: ExecOptions): Promise<ExecProcess> {
    return this.start(name, opts, false);
  }

  /** Starts a command on a PTY: resize and signals go over the control socket. */
  async interactive(name: string, opts: InteractiveOptions): Promise<ExecProcess> {
    return this.start(name, opts, true);
  }

  /**
   * Runs a command with LXD recording its output to log files (no websockets), then reads and
   * removes those files. Useful through proxies that do not carry websockets.
   */
  async recorded(name: string, opts: ExecOptions): Promise<ExecResult> {
    const op = await this.operation('POST', path`/1.0/instances/${checkInstanceName(name)}/exec`, {
      ...opts,
      body: { ...execBody(opts), interactive: false, 'wait-for-websocket': false, 'record-output': true },
    });
    const done = await op.wait({ signal: opts.signal });
    const meta = done.metadata as { return?: number; output?: Record<string, string> };
    const read = async (fd: '1' | '2') => {
      const logPath = meta.output?.[fd];
      if (!logPath) return Buffer.alloc(0);
      const res = await this.transport.raw(
        this.req('GET', logPath.replace(/^\/1\.0\/containers\//, '/1.0/instances/'), opts),
      );
      const content = await res.buffer();
      await this.call('DELETE', logPath, opts).catch(() => {});
      return content;
    };
    const [stdout, stderr] = await Promise.all([read('1'), read('2')]);
    return { exitCode: meta.return ?? -1, stdout, stderr };
  }

  private async start(name: string, opts: InteractiveOptions, interactive: boolean): Promise<ExecProcess> {
    if (!Array.isArray(opts.command) || opts.command.length === 0 || opts.command.some((c) => typeof c !== 'string')) {
      throw new InvalidArgumentError({
        message: 'command must be a non-empty array of strings',
        argument: 'command',
        backend: BACKEND,
      });
    }
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
    const op = await this.operation('POST', path`/1.0/instances/${checkInstanceName(name)}/exec`, { ...opts, body });
    const fds = (op.initial.metadata as { fds?: Fds }).fds;
    if (!fds)
      throw new InvalidArgumentError({
        message: 'LXD did not return exec websockets',
        argument: 'command',
        backend: BACKEND,
      });
    const sockets: WebSocket[] = [];
    const connect = async (secret: string) => {
      const ws = await op.websocket(secret, { signal: opts.signal, timeout: 5_000 });
      sockets.push(ws);
      return ws;
    };
    let control: WebSocket;
    let stdinWs: WebSocket;
    let stdoutWs: WebSocket | undefined;
    let stderrWs: WebSocket | undefined;
    try {
      // LXD starts the command only when every socket is connected, and gives up after 5 s.
      [control, stdinWs, stdoutWs, stderrWs] = await Promise.all([
        connect(fds.control),
        connect(fds['0']),
        fds['1'] ? connect(fds['1']) : Promise.resolve(undefined),
        fds['2'] ? connect(fds['2']) : Promise.resolve(undefined),
      ]);
    } catch (error) {
      for (const ws of sockets) ws.terminate();
      throw error;
    }
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    // With a PTY, fd 0 is bidirectional: the terminal's output comes back on it.
    const outputs = interactive ? [pump(stdinWs, stdout)] : [pump(stdoutWs!, stdout), pump(stderrWs!, stderr)];
    if (interactive) {
      stderr.end();
      // With a PTY, LXD ends the operation only once we close fd 0: it closes the control socket
      // when the command dies, then marks the end of output with an empty text frame.
      void outputs[0]?.then(() => stdinWs.close());
      control.once('close', () => setTimeout(() => stdinWs.close(), 1_000).unref());
    }
    const stdin = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (stdinWs.readyState !== stdinWs.OPEN) return cb();
        stdinWs.send(chunk, { binary: true }, (e) => cb(e ?? null));
      },
      final(cb) {
        if (interactive || stdinWs.readyState !== stdinWs.OPEN) return cb();
        // stdin EOF on LXD 5.0 is an empty text frame.
        stdinWs.send(STDIN_EOF, { binary: false }, () => cb());
      },
    });
    stdin.on('error', () => {});
    let closed = false;
    const closeAll = () => {
      if (closed) return;
      closed = true;
      for (const ws of sockets) {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
      }
      setTimeout(() => {
        for (const ws of sockets) ws.terminate();
      }, 1_000).unref();
    };
    const exit = (async () => {
      // A missing command fails the operation yet still has an exit code (127).
      const [final] = (await Promise.all([op.settled(), ...outputs])) as [Operation, ...unknown[]];
      const code = (final.metadata as { return?: number } | null)?.return;
      if (typeof code !== 'number') await op.wait();
      closeAll();
      return code ?? -1;
    })();
    exit.catch(() => closeAll());
    const sendControl = (message: object) =>
      new Promise<void>((resolve, reject) => {
        if (control.readyState !== control.OPEN) {
          reject(new AbortError({ message: 'exec session already closed', backend: BACKEND }));
          return;
        }
        control.send(JSON.stringify(message), (e) => (e ? reject(e) : resolve()));
      });
    return {
      operation: op,
      stdin,
      stdout,
      stderr,
      exit,
      signal: (signal: number) => sendControl({ command: 'signal', signal }),
      resize: (width: number, height: number) =>
        sendControl({ command: 'window-resize', args: { width: String(width), height: String(height) } }),
      close: () => {
        if (!closed && control.readyState === control.OPEN) {
          // Kill what may still run, then close the sockets.
          control.send(JSON.stringify({ command: 'signal', signal: 9 }), () => closeAll());
          setTimeout(closeAll, 200).unref();
        } else closeAll();
        stdout.end();
        stderr.end();
      },
    };
  }
}

function execBody(opts: ExecOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { command: opts.command, environment: opts.env ?? {} };
  if (opts.cwd !== undefined) body.cwd = opts.cwd;
  if (opts.user !== undefined) body.user = opts.user;
  if (opts.group !== undefined) body.group = opts.group;
  return body;
}

/** Copies an output websocket into a stream; done at the empty text frame or the close. */
function pump(ws: WebSocket, out: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      ws.off('message', onMessage);
      out.end();
      resolve();
    };
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (!isBinary && data.length === 0) {
        finish();
        return;
      }
      if (!out.writableEnded) out.write(data);
    };
    ws.on('message', onMessage);
    ws.once('close', finish);
    ws.on('error', () => {});
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
