import { PassThrough, type Readable } from 'node:stream';
import { path } from '@vmplane/common';
import type WebSocket from 'ws';
import { checkInstanceName } from '../names.js';
import type { LxdOperation } from '../operation.js';
import { type LxdCallOptions, Resource } from './base.js';

export interface ConsoleOptions extends LxdCallOptions {
  /** `console` (text, default) or `vga` (VMs: SPICE). */
  type?: 'console' | 'vga';
  width?: number;
  height?: number;
}

/** An attached console: write to it, read its output, resize it, close it. */
export interface ConsoleSession {
  readonly operation: LxdOperation;
  readonly output: Readable;
  write(data: Buffer | string): Promise<void>;
  resize(width: number, height: number): Promise<void>;
  close(): void;
}

export class InstanceConsole extends Resource {
  /** Attaches to the instance's console over websockets. */
  async attach(name: string, opts: ConsoleOptions = {}): Promise<ConsoleSession> {
    const op = await this.operation('POST', path`/1.0/instances/${checkInstanceName(name)}/console`, {
      ...opts,
      body: { type: opts.type ?? 'console', width: opts.width ?? 80, height: opts.height ?? 24 },
    });
    const fds = (op.initial.metadata as { fds?: Record<string, string> }).fds ?? {};
    const output = new PassThrough();
    const sockets: WebSocket[] = [];
    let data: WebSocket;
    let control: WebSocket;
    try {
      [data, control] = await Promise.all([
        op.websocket(fds['0'] ?? '', {
          signal: opts.signal,
          // Listening from the socket's creation: the console's first bytes may come as it opens.
          onSocket: (ws) => {
            sockets.push(ws);
            ws.on('message', (chunk: Buffer) => {
              if (!output.writableEnded) output.write(chunk);
            });
            ws.once('close', () => output.end());
          },
        }),
        op.websocket(fds.control ?? '', { signal: opts.signal, onSocket: (ws) => sockets.push(ws) }),
      ]);
    } catch (error) {
      for (const ws of sockets) ws.terminate();
      output.destroy();
      throw error;
    }
    data.on('error', () => {});
    control.on('error', () => {});
    const send = (ws: WebSocket, payload: Buffer | string, binary: boolean) =>
      new Promise<void>((resolve, reject) => ws.send(payload, { binary }, (e) => (e ? reject(e) : resolve())));
    return {
      operation: op,
      output,
      write: (chunk) => send(data, typeof chunk === 'string' ? Buffer.from(chunk) : chunk, true),
      resize: (width, height) =>
        send(
          control,
          JSON.stringify({ command: 'window-resize', args: { width: String(width), height: String(height) } }),
          false,
        ),
      close: () => {
        control.close();
        data.close();
        output.end();
      },
    };
  }

  /** What the console printed so far (containers: the console log). */
  async log(name: string, opts: LxdCallOptions = {}): Promise<string> {
    const res = await this.transport.raw(
      this.req('GET', path`/1.0/instances/${checkInstanceName(name)}/console`, opts),
    );
    return res.text();
  }

  async clearLog(name: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/instances/${checkInstanceName(name)}/console`, opts);
  }
}
