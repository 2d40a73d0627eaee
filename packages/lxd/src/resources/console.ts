import { PassThrough, type Readable } from 'node:stream';
import { inspect } from 'node:util';
import { ConnectionError, callOptions, InvalidArgumentError, path, redactText, withDeadline } from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND } from '../errors.js';
import { checkInstanceName } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { InstanceState } from '../types/api.js';
import { StatusCode } from '../types/status-code.js';
import { type LxdCallOptions, Resource } from './base.js';
import { checkTerminalSize } from './exec-options.js';
import { sendFrame } from './session-frames.js';

export interface ConsoleOptions extends LxdCallOptions {
  /** `console` (text, default) or `vga` (VMs: SPICE). */
  type?: 'console' | 'vga';
  /** Terminal size (default 80x24), integers from 1 to 65535. */
  width?: number;
  height?: number;
}

const CLOSE_GRACE = 1_000;
/** How long the instance's state may take to say why a console closed. */
const STATE_TIMEOUT = 5_000;

/**
 * An attached console: write to it, read its output, resize it, close it. The session owns its
 * two websockets: leaving a `for await` over `output` early closes them, a lost connection ends
 * `output` with a ConnectionError, and a write after close rejects. Printing it shows no secret.
 */
export class ConsoleSession {
  readonly output: Readable;
  readonly #operation: LxdOperation;
  readonly #instanceRuns: () => Promise<boolean>;
  readonly #sockets: WebSocket[] = [];
  #data: WebSocket | undefined;
  #control: WebSocket | undefined;
  #closed = false;

  private constructor(operation: LxdOperation, instanceRuns: () => Promise<boolean>) {
    this.#operation = operation;
    this.#instanceRuns = instanceRuns;
    const output: PassThrough = new PassThrough({
      // A reader that leaves before the end (break, throw, destroy) detaches, at once.
      destroy: (error, callback) => {
        if (!output.readableEnded) this.close();
        callback(error);
      },
    });
    // The error reaches readers through the stream (for await, pipeline); this only keeps an
    // unread stream's error from crashing the process.
    output.on('error', () => {});
    this.output = output;
  }

  /** `instanceRuns` tells, once the daemon closed the console, whether its instance still runs. */
  static async open(
    operation: LxdOperation,
    signal: AbortSignal,
    instanceRuns: () => Promise<boolean>,
  ): Promise<ConsoleSession> {
    const session = new ConsoleSession(operation, instanceRuns);
    const secrets = operation.websocketSecrets();
    if (typeof secrets['0'] !== 'string' || typeof secrets.control !== 'string') {
      throw new InvalidArgumentError({
        message: 'LXD did not return console websockets',
        argument: 'type',
        backend: BACKEND,
      });
    }
    try {
      [session.#data, session.#control] = await Promise.all([
        // Listening from the socket's creation: the console's first bytes may come as it opens.
        operation.websocket(secrets['0'], { signal, onSocket: (ws) => session.#adopt(ws, true) }),
        operation.websocket(secrets.control, { signal, onSocket: (ws) => session.#adopt(ws, false) }),
      ]);
    } catch (error) {
      session.#closed = true;
      for (const ws of session.#sockets) ws.terminate();
      session.output.destroy();
      throw error;
    }
    return session;
  }

  get operation(): LxdOperation {
    return this.#operation;
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: Buffer | Uint8Array | string): Promise<void> {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      return Promise.reject(
        new InvalidArgumentError({
          message: 'console data must be a Buffer, Uint8Array or string',
          argument: 'data',
          backend: BACKEND,
        }),
      );
    }
    return this.#send(this.#data, Buffer.from(data), true);
  }

  async resize(width: number, height: number): Promise<void> {
    const size = checkTerminalSize(width, height);
    const message = { command: 'window-resize', args: { width: String(size.width), height: String(size.height) } };
    await this.#send(this.#control, JSON.stringify(message), false);
  }

  /** Detaches: closes both websockets (once) and ends `output`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const ws of this.#sockets) if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    const cut = setTimeout(() => {
      for (const ws of this.#sockets) ws.terminate();
    }, CLOSE_GRACE);
    cut.unref();
    const output = this.output as PassThrough;
    if (!output.writableEnded && !output.destroyed) output.end();
  }

  toJSON(): Record<string, unknown> {
    return { operation: this.#operation.id, closed: this.#closed };
  }

  [inspect.custom](): string {
    return `ConsoleSession ${inspect(this.toJSON())}`;
  }

  #adopt(ws: WebSocket, data: boolean): void {
    this.#sockets.push(ws);
    let failure: Error | undefined;
    ws.on('error', (error: Error) => {
      failure ??= error;
    });
    if (!data) return;
    const output = this.output as PassThrough;
    ws.on('message', (chunk: Buffer) => {
      if (!output.writableEnded && !output.destroyed) output.write(chunk);
    });
    ws.once('close', () => {
      if (this.#closed) return;
      void this.#ended(failure);
    });
  }

  /**
   * The daemon closed the console, or the connection broke. A console ends by itself only with its
   * instance: when the instance still runs (or cannot be asked), the connection was lost.
   */
  async #ended(failure: Error | undefined): Promise<void> {
    const output = this.output as PassThrough;
    const lost = failure !== undefined || (await this.#instanceRuns().catch(() => true));
    this.#closed = true;
    for (const ws of this.#sockets) ws.terminate();
    if (output.writableEnded || output.destroyed) return;
    if (!lost) {
      output.end();
      return;
    }
    const detail = failure ? `: ${redactText(failure.message)}` : '';
    output.destroy(
      new ConnectionError({
        message: `console ${this.#operation.id}: the connection was lost${detail}`,
        backend: BACKEND,
        sent: true,
      }),
    );
  }

  #send(ws: WebSocket | undefined, payload: Buffer | string, binary: boolean): Promise<void> {
    return sendFrame(`console ${this.#operation.id}`, this.#closed, ws, payload, binary);
  }
}

export class InstanceConsole extends Resource {
  /** Attaches to the instance's console over websockets. */
  async attach(name: string, opts: ConsoleOptions = {}): Promise<ConsoleSession> {
    const instance = checkInstanceName(name);
    const type = opts.type ?? 'console';
    if (type !== 'console' && type !== 'vga') {
      throw new InvalidArgumentError({
        message: `type must be 'console' or 'vga', not ${JSON.stringify(type)}`,
        argument: 'type',
        backend: BACKEND,
      });
    }
    const size = checkTerminalSize(opts.width ?? 80, opts.height ?? 24);
    return withDeadline(callOptions(opts), BACKEND, async (d) => {
      const op = await this.operation(
        'POST',
        path`/1.0/instances/${instance}/console`,
        { project: opts.project, signal: d.signal },
        { body: { type, width: size.width, height: size.height } },
      );
      const instanceRuns = async () => {
        const state = await this.call<InstanceState>(
          'GET',
          path`/1.0/instances/${instance}/state`,
          { project: opts.project, timeout: STATE_TIMEOUT },
          {},
        );
        return state.status_code === StatusCode.Running;
      };
      return ConsoleSession.open(op, d.signal, instanceRuns);
    });
  }

  /** What the console printed so far (containers: the console log). */
  async log(name: string, opts: LxdCallOptions = {}): Promise<string> {
    const res = await this.transport.raw(
      this.req('GET', path`/1.0/instances/${checkInstanceName(name)}/console`, opts, {}),
    );
    return res.text();
  }

  async clearLog(name: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/instances/${checkInstanceName(name)}/console`, opts, {});
  }
}
