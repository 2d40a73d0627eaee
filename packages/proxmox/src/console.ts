import { inspect } from 'node:util';
import {
  apiErrorFromStatus,
  type CallOptions,
  ConnectionError,
  certificateError,
  InvalidArgumentError,
  redactText,
  VmplaneError,
  withDeadline,
} from '@vmplane/common';
import { WebSocket } from 'ws';
import { BACKEND } from './errors.js';
import { checkEnum, checkInteger, checkNode, checkVmid } from './ids.js';
import { agentOf, type ProxmoxTransport } from './transport.js';

export type ConsoleKind = 'kvm' | 'lxc' | 'shell';

export interface ConsoleUrlOptions {
  kind: ConsoleKind;
  node: string;
  vmid?: number | undefined;
  /** Guest name shown in the console's title. */
  name?: string | undefined;
  /** xterm.js instead of noVNC (LXC and node shells, QEMU serial consoles). */
  xterm?: boolean | undefined;
  /** A vncproxy ticket, for embedding without a PVE login in the browser. */
  vncticket?: string | undefined;
}

/**
 * The URL of PVE's own console page (`/?console=kvm&novnc=1&vmid=...`), as the web UI opens it.
 * The browser needs a PVE session (PVEAuthCookie) unless a `vncticket` is supplied.
 */
export function consoleUrl(baseUrl: string | URL, opts: ConsoleUrlOptions): string {
  checkEnum(opts?.kind, ['kvm', 'lxc', 'shell'], 'kind');
  checkNode(opts.node);
  if (opts.vmid !== undefined) checkVmid(opts.vmid);
  let base: URL;
  try {
    base = new URL(String(baseUrl));
  } catch (error) {
    throw new InvalidArgumentError({ message: 'Invalid baseUrl', argument: 'baseUrl', backend: BACKEND, cause: error });
  }
  base.pathname = base.pathname.replace(/\/api2\/json\/?$/, '').replace(/\/*$/, '/');
  const q = new URLSearchParams();
  q.set('console', opts.kind);
  q.set(opts.xterm ? 'xtermjs' : 'novnc', '1');
  if (opts.vmid !== undefined) q.set('vmid', String(opts.vmid));
  if (opts.name !== undefined) q.set('vmname', opts.name);
  q.set('node', opts.node);
  q.set('resize', 'off');
  q.set('cmd', '');
  if (opts.vncticket !== undefined) q.set('vncticket', opts.vncticket);
  // encodeURIComponent-style (%20, not '+'): PVE's console page decodes the ticket with it.
  return `${base.origin}${base.pathname}?${q.toString().replace(/\+/g, '%20')}`;
}

/**
 * A VNC (or termproxy) websocket to a guest or node: binary RFB frames in both directions.
 * `messages()` is an AsyncIterable that closes the socket when the loop is left.
 */
export class ConsoleConnection {
  // Private: the socket keeps the URL, whose query carries the one-time VNC ticket.
  readonly #socket: WebSocket;
  readonly #queue: Buffer[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #error: Error | undefined;

  /** @internal */
  constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      this.#queue.push(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', (e) => {
      this.#error = e;
      this.#closed = true;
      this.#wake?.();
    });
  }

  /** The websocket itself (ws's WebSocket), for its readyState and events. */
  get socket(): WebSocket {
    return this.#socket;
  }

  send(data: string | Uint8Array): void {
    this.#socket.send(data);
  }

  // Printed with getters, the socket would show its URL and the VNC ticket in it.
  [inspect.custom](): string {
    return `ConsoleConnection { readyState: ${this.#socket.readyState}, queued: ${this.#queue.length} }`;
  }

  close(): void {
    this.#socket.close();
  }

  async *messages(): AsyncGenerator<Buffer, void, undefined> {
    try {
      for (;;) {
        const next = this.#queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.#closed) {
          if (this.#error) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
      }
    } finally {
      if (this.#socket.readyState === WebSocket.OPEN || this.#socket.readyState === WebSocket.CONNECTING)
        this.#socket.close();
    }
  }
}

/**
 * Opens `.../vncwebsocket?port=..&vncticket=..` with the client's own credentials and TLS policy.
 * `timeout` bounds the upgrade (default: the client's call timeout); `signal` aborts it.
 */
export async function openConsoleSocket(
  t: ProxmoxTransport,
  apiPath: string,
  port: number,
  vncticket: string,
  opts: CallOptions = {},
): Promise<ConsoleConnection> {
  return withDeadline({ signal: opts.signal, timeout: opts.timeout ?? t.timeout }, BACKEND, async (d) => {
    checkInteger(port, 'port', 1, 65_535);
    if (typeof vncticket !== 'string' || vncticket === '') {
      throw new InvalidArgumentError({ message: 'the proxy has no ticket', argument: 'ticket', backend: BACKEND });
    }
    const url = new URL(`${t.apiUrl}${apiPath}`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('port', String(port));
    url.searchParams.set('vncticket', vncticket);
    const headers = await t.auth.headers(false);
    const socket = new WebSocket(url, ['binary'], { agent: agentOf(t), headers });
    // Frames that arrive with the upgrade answer are kept: the connection starts listening at once.
    const connection = new ConsoleConnection(socket);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        socket.terminate();
        reject(d.signal.reason);
      };
      if (d.signal.aborted) return onAbort();
      d.signal.addEventListener('abort', onAbort, { once: true });
      socket.once('open', () => {
        d.signal.removeEventListener('abort', onAbort);
        resolve();
      });
      socket.once('unexpected-response', (_req, res) => {
        d.signal.removeEventListener('abort', onAbort);
        socket.terminate();
        reject(
          apiErrorFromStatus({
            status: res.statusCode ?? 500,
            backend: BACKEND,
            // The URL carries the one-time ticket: only the path is named.
            message: `GET ${apiPath}: ${res.statusMessage ?? `HTTP ${res.statusCode}`}`,
            method: 'GET',
            path: apiPath,
          }),
        );
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        d.signal.removeEventListener('abort', onAbort);
        // A refused certificate or pin is final and nothing was sent: keep its own type.
        if (e instanceof VmplaneError) return reject(e);
        reject(
          certificateError(e, `GET ${apiPath}`, BACKEND) ??
            new ConnectionError({
              message: `GET ${apiPath}: ${redactText(e.message)}`,
              backend: BACKEND,
              sent: true,
              syscallCode: e.code,
            }),
        );
      });
    });
    return connection;
  });
}
