import { PassThrough, type Readable, Writable } from 'node:stream';
import { AbortError, deadline, InvalidArgumentError, path, withDeadline } from '@vmplane/common';
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
    const via = opts.via ?? (opts.stdin === undefined ? 'record-output' : 'websockets');
    if (via === 'record-output') {
      if (opts.stdin !== undefined) {
        throw new InvalidArgumentError({
          message: 'stdin needs the websockets exec: LXD feeds a recorded command no input',
          argument: 'stdin',
          backend: BACKEND,
        });
      }
      return this.recorded(name, opts);
    }
    if (via !== 'websockets') {
      throw new InvalidArgumentError({
        message: `via must be 'record-output' or 'websockets', not ${JSON.stringify(via)}`,
        argument: 'via',
        backend: BACKEND,
      });
    }
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
   * removes those files. Works through proxies that do not carry websockets, and never loses
   * output. An abort or timeout ends the call; the command runs on (LXD cannot signal it), and
   * its log files are removed once it ends.
   */
  async recorded(name: string, opts: ExecOptions): Promise<ExecResult> {
    checkCommand(opts.command);
    const project = projectOf(opts);
    return withDeadline(opts, BACKEND, async (d) => {
      const call = { ...project, signal: d.signal };
      const op = await this.operation('POST', path`/1.0/instances/${checkInstanceName(name)}/exec`, {
        ...call,
        body: { ...execBody(opts), interactive: false, 'wait-for-websocket': false, 'record-output': true },
      });
      let final: Operation;
      try {
        final = await op.settled({ signal: d.signal });
      } catch (error) {
        void op.settled().then(
          (ended) => this.removeRecorded(ended, name, project),
          () => this.removeRecorded(op.initial, name, project),
        );
        throw error;
      }
      try {
        // A missing command fails the operation yet still has an exit code (127).
        const exitCode = (final.metadata as { return?: unknown } | null)?.return;
        if (typeof exitCode !== 'number') await op.wait();
        const [stdout, stderr] = await Promise.all([
          this.readRecorded(final, '1', call),
          this.readRecorded(final, '2', call),
        ]);
        return { exitCode: typeof exitCode === 'number' ? exitCode : -1, stdout, stderr };
      } finally {
        await this.removeRecorded(final, name, project);
      }
    });
  }

  private async readRecorded(op: Operation, fd: '1' | '2', opts: LxdCallOptions): Promise<Buffer> {
    const logPath = recordedPaths(op)[fd];
    if (!logPath) return Buffer.alloc(0);
    return (await this.transport.raw(this.req('GET', logPath, opts))).buffer();
  }

  private async removeRecorded(op: Operation, name: string, opts: LxdCallOptions): Promise<void> {
    let paths: string[] = Object.values(recordedPaths(op));
    if (paths.length === 0) {
      // A command that never started ends without `output` in its metadata, yet LXD made the files.
      const base = path`/1.0/instances/${name}/logs`;
      paths = ['stdout', 'stderr'].map((fd) => `${base}/exec_${encodeURIComponent(op.id)}.${fd}`);
    }
    await Promise.all(paths.map((p) => this.call('DELETE', p, opts).catch(() => {})));
  }

  private async start(name: string, opts: InteractiveOptions, interactive: boolean): Promise<ExecProcess> {
    checkCommand(opts.command);
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
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const outputs: Promise<void>[] = [];
    const sockets: WebSocket[] = [];
    // Output is wired up as each socket is created: LXD starts the command once the last socket
    // connects, and its first frames can beat our own notice that every socket is open.
    const connect = (secret: string, output?: PassThrough) =>
      op.websocket(secret, {
        signal: opts.signal,
        timeout: 5_000,
        onSocket: (ws) => {
          sockets.push(ws);
          if (output) outputs.push(pump(ws, output));
        },
      });
    let control: WebSocket;
    let stdinWs: WebSocket;
    try {
      // LXD starts the command only when every socket is connected, and gives up after 5 s.
      // With a PTY, fd 0 is bidirectional: the terminal's output comes back on it.
      [control, stdinWs] = await Promise.all([
        connect(fds.control),
        connect(fds['0'], interactive ? stdout : undefined),
        fds['1'] && !interactive ? connect(fds['1'], stdout) : undefined,
        fds['2'] && !interactive ? connect(fds['2'], stderr) : undefined,
      ]);
    } catch (error) {
      for (const ws of sockets) ws.terminate();
      stdout.destroy();
      stderr.destroy();
      throw error;
    }
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

function checkCommand(command: unknown): void {
  if (!Array.isArray(command) || command.length === 0 || command.some((c) => typeof c !== 'string')) {
    throw new InvalidArgumentError({
      message: 'command must be a non-empty array of strings',
      argument: 'command',
      backend: BACKEND,
    });
  }
}

function projectOf(opts: LxdCallOptions): LxdCallOptions {
  return opts.project === undefined ? {} : { project: opts.project };
}

/** The log files LXD recorded a command's output to, as paths under /1.0/instances. */
function recordedPaths(op: Operation): Partial<Record<'1' | '2', string>> {
  const output = (op.metadata as { output?: Record<string, unknown> } | null)?.output ?? {};
  const paths: Partial<Record<'1' | '2', string>> = {};
  for (const fd of ['1', '2'] as const) {
    const p = output[fd];
    // LXD 5.0 may still name them under the older /1.0/containers.
    if (typeof p === 'string') paths[fd] = p.replace(/^\/1\.0\/containers\//, '/1.0/instances/');
  }
  return paths;
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
