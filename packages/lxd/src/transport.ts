import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import { inspect } from 'node:util';
import {
  type CallOptions,
  ConnectionError,
  checkCallOptions,
  createAgent,
  deadline,
  exchange,
  type HttpBody,
  type HttpResponse,
  InterruptionError,
  InvalidArgumentError,
  type Logger,
  pinnedConnector,
  pinOf,
  type QueryValue,
  query as queryString,
  type RetryPolicy,
  redactingLogger,
  redactText,
  retry,
  retryDecision,
  silentLogger,
  type TlsTrust,
  tlsOptions,
} from '@vmplane/common';
import WebSocket from 'ws';
import { type CallDeadline, callDeadline, ownedBy } from './call-deadline.js';
import { errorFrom, errorFromIncoming, headerValue, operationIdOf, readEnvelope, socketError } from './envelope.js';
import { BACKEND, noteSentAll } from './errors.js';
import { checkProjectName } from './names.js';
import { checkBody, isBytes, jsonBody } from './request-checks.js';

export type Pem = string | Buffer;

export interface LxdTransportOptions {
  /** Unix socket path (local daemon). */
  socketPath?: string | undefined;
  /** `https://host:8443` for a remote daemon. */
  url?: string | undefined;
  /** Client certificate and key (PEM) for TLS. */
  cert?: Pem | undefined;
  key?: Pem | undefined;
  /** The server's own certificate: trusted alone, whatever its name (as `lxc remote add` pins it). */
  serverCert?: Pem | undefined;
  /** A CA for servers with CA-signed certificates (PKI mode). */
  ca?: Pem | undefined;
  /** Accept any server certificate. Explicit opt-in, for first contact before pinning. */
  insecure?: boolean | undefined;
  /** Project added to every request unless a call says otherwise. */
  project?: string | undefined;
  /**
   * Default per-call timeout in ms (30 s). It bounds a plain request whole, and a download or
   * export only until its answer begins: reading the body is bounded by the caller's own
   * `timeout`/`signal`. Operation waits have none unless the caller gives one.
   */
  timeout?: number | undefined;
  /** Retries of reads and of requests that never left. Default 3 attempts, 100 ms doubling to 2 s. */
  retry?: RetryPolicy | undefined;
  logger?: Logger | undefined;
  userAgent?: string | undefined;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const METHODS: ReadonlySet<string> = new Set<Method>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export interface LxdRequest extends CallOptions {
  method: Method;
  /** Built with the `path` tag. */
  path: string;
  query?: Readonly<Record<string, QueryValue>> | undefined;
  /** JSON body. */
  body?: unknown;
  /** Raw body (file content, image tarball); sent as is. */
  rawBody?: HttpBody;
  headers?: Readonly<Record<string, string>> | undefined;
  /** Sent as If-Match: the update fails with 412 if the object changed since it was read. */
  etag?: string | undefined;
  /**
   * The project: a name, `null` for none (objects outside projects, or every project at once),
   * or left out for the transport's default project.
   */
  project?: string | null | undefined;
  onUploadProgress?: ((sent: number) => void) | undefined;
}

/** LXD's response envelope. */
export interface LxdResponse<T> {
  type: 'sync' | 'async';
  status: number;
  metadata: T;
  /** The object's ETag, for a later If-Match. */
  etag: string | undefined;
  /** For async responses: `/1.0/operations/<id>`. */
  operation: string;
}

export interface WebSocketOptions extends CallOptions {
  /** As in {@link LxdRequest.project}: a name, null for none, absent for the default. */
  project?: string | null;
  /** Called with the socket as soon as it exists, before it opens: attach 'message' listeners here. */
  onSocket?: (ws: WebSocket) => void;
}

const IDEMPOTENT = new Set<Method>(['GET', 'HEAD']);

/**
 * The connections a transport and every transport `withProject` derives from it share: one
 * keep-alive pool and one trust policy. Kept out of sight: the TLS options hold the client key.
 */
interface Connections {
  readonly socketPath: string | undefined;
  readonly baseUrl: URL;
  readonly agent: http.Agent;
  /** Client certificate, CA and verification for connections made without the agent. */
  readonly tls: TlsConnect;
  readonly pin: string | undefined;
}

interface TlsConnect {
  cert?: Pem | undefined;
  key?: Pem | undefined;
  ca?: Pem | Pem[] | undefined;
  rejectUnauthorized?: boolean | undefined;
}

/** The pinned `createConnection`, typed for http.request and ws (they pass it the same options). */
function pinned(pin: string): http.RequestOptions['createConnection'] {
  return pinnedConnector(pin, BACKEND) as unknown as http.RequestOptions['createConnection'];
}

// Set by withProject for the constructor it calls, which takes it at once: never seen outside.
let adopting: Connections | undefined;

/**
 * The one way to talk to an LXD daemon: auth (socket or client certificate), timeouts, retries,
 * logging, envelope. Its options, agent and keys live in private fields, so printing a client,
 * a resource or an operation shows none of them.
 */
export class LxdTransport {
  readonly socketPath: string | undefined;
  readonly baseUrl: URL;
  readonly project: string | undefined;
  readonly logger: Logger;
  readonly #options: LxdTransportOptions;
  readonly #connections: Connections;
  /** The transport that made the connections (this one, unless made by withProject). */
  readonly #owner: boolean;
  readonly #timeout: number;
  readonly #retry: RetryPolicy & { attempts: number };
  readonly #userAgent: string;

  constructor(options: LxdTransportOptions) {
    const inherited = adopting;
    adopting = undefined;
    const opts = options ?? {};
    checkCallOptions({ timeout: opts.timeout }, BACKEND);
    if (opts.project !== undefined) checkProjectName(opts.project);
    this.#options = { ...opts };
    this.logger = redactingLogger(opts.logger ?? silentLogger);
    this.project = opts.project;
    this.#timeout = opts.timeout ?? 30_000;
    this.#retry = { attempts: 3, initial: 100, max: 2_000, ...opts.retry };
    this.#userAgent = opts.userAgent ?? 'vmplane-lxd/0.1';
    this.#owner = inherited === undefined;
    this.#connections = inherited ?? connectionsFor(opts);
    this.socketPath = this.#connections.socketPath;
    this.baseUrl = this.#connections.baseUrl;
  }

  /** The per-call timeout used when a call gives none. */
  get defaultTimeout(): number {
    return this.#timeout;
  }

  /**
   * The same daemon, credentials and connections, another default project. Closing the parent
   * closes the connections of both.
   */
  withProject(project: string): LxdTransport {
    checkProjectName(project);
    adopting = this.#connections;
    try {
      return new LxdTransport({ ...this.#options, project });
    } finally {
      adopting = undefined;
    }
  }

  /**
   * Closes the keep-alive connections so the process can exit. On the transport that made them
   * this closes every connection, also those of its withProject transports and calls in flight;
   * on a withProject transport only the idle ones (its parent may still be using the others).
   * Later calls open new connections.
   */
  close(): void {
    const agent = this.#connections.agent;
    if (this.#owner) {
      agent.destroy();
      return;
    }
    for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }

  /** The URL of a call; a project that LXD could not have made is refused here, before any call. */
  url(path: string, params: Readonly<Record<string, QueryValue>> = {}, project?: string | null): URL {
    if (project !== undefined && project !== null) checkProjectName(project);
    const p = project === null ? undefined : (project ?? this.project);
    return new URL(`${path}${queryString({ ...params, project: p })}`, this.baseUrl);
  }

  /** A JSON request whose answer is LXD's envelope. */
  async request<T>(req: LxdRequest): Promise<LxdResponse<T>> {
    const call = this.#prepare(req);
    const d = callDeadline(req, this.#timeout);
    try {
      const res = await this.#send(call, d);
      const envelope = await readEnvelope(res);
      return {
        type: envelope.type === 'async' ? 'async' : 'sync',
        status: res.status,
        metadata: envelope.metadata as T,
        etag: headerValue(res.headers.etag),
        operation: envelope.operation ?? '',
      };
    } catch (error) {
      throw d.outcome(error);
    } finally {
      d.dispose();
    }
  }

  /**
   * A request whose answer body the caller reads (file content, an export). Errors are still
   * typed from the envelope. The transport's default timeout lasts until the answer begins; the
   * caller's `timeout` and `signal` until the body has been read or dropped.
   */
  async raw(req: LxdRequest): Promise<HttpResponse> {
    const call = this.#prepare(req);
    const d = callDeadline(req, this.#timeout);
    let res: HttpResponse;
    try {
      res = await this.#send(call, d);
    } catch (error) {
      d.dispose();
      throw d.outcome(error);
    }
    d.answered();
    return ownedBy(res, () => d.dispose());
  }

  /** Checks a request and builds what goes on the wire, before anything exists. */
  #prepare(req: LxdRequest): PreparedCall {
    if (typeof req !== 'object' || req === null || !METHODS.has(req.method)) {
      throw new InvalidArgumentError({ message: 'Unknown HTTP method', argument: 'method', backend: BACKEND });
    }
    checkCallOptions(req, BACKEND);
    if (typeof req.path !== 'string' || !req.path.startsWith('/')) {
      throw new InvalidArgumentError({ message: 'A request path is absolute', argument: 'path', backend: BACKEND });
    }
    const headers: Record<string, string> = { 'User-Agent': this.#userAgent, ...req.headers };
    let body: HttpBody;
    if (req.rawBody !== undefined) body = checkBody(req.rawBody, 'rawBody');
    else if (req.body !== undefined) {
      body = jsonBody(req.body);
      headers['Content-Type'] = 'application/json';
    }
    if (req.etag !== undefined) {
      if (typeof req.etag !== 'string') {
        throw new InvalidArgumentError({ message: 'etag must be a string', argument: 'etag', backend: BACKEND });
      }
      headers['If-Match'] = req.etag;
    }
    const url = this.url(req.path, req.query, req.project);
    return { method: req.method, url, headers, body, onUploadProgress: req.onUploadProgress };
  }

  async #send(call: PreparedCall, d: CallDeadline): Promise<HttpResponse> {
    const { method, url, headers, body } = call;
    // A streamed body cannot be sent twice: such a request is attempted once.
    const replayable = body === undefined || typeof body === 'string' || isBytes(body);
    return retry(
      async () => {
        const started = performance.now();
        let res: HttpResponse;
        try {
          res = await exchange({
            method,
            url,
            socketPath: this.socketPath,
            headers,
            body,
            agent: this.#connections.agent,
            signal: d.signal,
            backend: BACKEND,
            onUploadProgress: call.onUploadProgress,
          });
        } catch (error) {
          if ((error instanceof ConnectionError || error instanceof InterruptionError) && error.sent) d.sent();
          throw error;
        }
        d.sent(res.status === 202 ? operationIdOf(res.headers) : undefined);
        this.logger.debug('lxd request', {
          method,
          path: url.pathname,
          query: url.search,
          status: res.status,
          ms: Math.round(performance.now() - started),
        });
        if (res.status >= 400) throw await errorFrom(res, method, url.pathname);
        return res;
      },
      {
        ...this.#retry,
        attempts: replayable ? this.#retry.attempts : 1,
        signal: d.signal,
        decide: (error) => retryDecision(error, { idempotent: IDEMPOTENT.has(method) }),
        onRetry: ({ attempt, delay, error }) =>
          this.logger.warn('lxd request failed, retrying', {
            method,
            path: url.pathname,
            attempt,
            delayMs: delay,
            error: error instanceof Error ? redactText(error.message) : String(error),
          }),
      },
    );
  }

  /**
   * Asks LXD to switch a fresh connection to another protocol (`sftp`) and hands over the raw
   * connection, which the caller then owns. The deadline covers the handshake only.
   */
  async upgrade(
    path: string,
    protocol: string,
    opts: CallOptions & { project?: string | null | undefined } = {},
  ): Promise<Duplex> {
    const url = this.url(path, {}, opts.project);
    const d = deadline({ signal: opts.signal, timeout: opts.timeout ?? this.#timeout }, BACKEND);
    d.throwIfAborted();
    const { socketPath, tls, pin } = this.#connections;
    return new Promise<Duplex>((resolve, reject) => {
      const headers = { Connection: 'Upgrade', Upgrade: protocol, 'User-Agent': this.#userAgent };
      const target = `${url.pathname}${url.search}`;
      let req: http.ClientRequest;
      try {
        req = socketPath
          ? http.request({ socketPath, path: target, headers, agent: false })
          : https.request({
              ...tls,
              host: url.hostname.replace(/^\[|\]$/g, ''),
              port: url.port || 8443,
              path: target,
              headers,
              // A pinned connection is checked before the request is handed the socket.
              ...(pin ? { createConnection: pinned(pin) } : { agent: false }),
            });
      } catch (error) {
        d.dispose();
        reject(
          new InvalidArgumentError({
            message: `upgrade ${redactText(url.pathname)}: ${(error as Error).message}`,
            argument: 'headers',
            backend: BACKEND,
            cause: error,
          }),
        );
        return;
      }
      let connected = false;
      req.once('socket', (socket) => {
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      const settle = (error: unknown, socket?: Duplex) => {
        d.signal.removeEventListener('abort', onAbort);
        d.dispose();
        if (socket) resolve(socket);
        else reject(error);
      };
      const onAbort = () => {
        req.destroy();
        const reason = d.reason();
        if (connected) noteSentAll(reason);
        settle(reason);
      };
      d.signal.addEventListener('abort', onAbort, { once: true });
      req.once('upgrade', (_res, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        this.logger.debug('lxd upgrade', { path: url.pathname, protocol });
        settle(undefined, socket);
      });
      req.once('response', (res) => {
        void errorFromIncoming(res, 'GET', url.pathname).then((error) => settle(error));
      });
      req.once('error', (error: NodeJS.ErrnoException) => {
        if (d.reason()) return;
        settle(socketError(`upgrade ${redactText(url.pathname)}`, error, connected));
      });
      req.end();
    });
  }

  /** Opens a websocket to the daemon (operation fds, events, console). */
  async websocket(
    path: string,
    params: Readonly<Record<string, QueryValue>> = {},
    opts: WebSocketOptions = {},
  ): Promise<WebSocket> {
    const url = this.url(path, params, opts.project);
    const { socketPath, tls, pin } = this.#connections;
    const target = socketPath
      ? `ws+unix://${socketPath}:${url.pathname}${url.search}`
      : `wss://${url.host}${url.pathname}${url.search}`;
    const d = deadline({ signal: opts.signal, timeout: opts.timeout ?? this.#timeout }, BACKEND);
    d.throwIfAborted();
    const what = `websocket ${redactText(url.pathname)}`;
    return new Promise<WebSocket>((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(target, {
          ...(socketPath ? {} : tls),
          ...(pin && !socketPath ? { createConnection: pinned(pin) } : {}),
          headers: { 'User-Agent': this.#userAgent },
          perMessageDeflate: false,
        });
      } catch (error) {
        d.dispose();
        reject(
          new InvalidArgumentError({
            message: `${what}: ${(error as Error).message}`,
            argument: 'path',
            backend: BACKEND,
          }),
        );
        return;
      }
      // Frames can arrive in the tick the socket opens, before any promise continuation runs;
      // listeners attached here are the only ones sure to see them.
      opts.onSocket?.(ws);
      let connected = false;
      ws.once('upgrade', () => (connected = true));
      const fail = (error: unknown) => {
        d.signal.removeEventListener('abort', onAbort);
        d.dispose();
        ws.removeAllListeners('open');
        ws.terminate();
        reject(error);
      };
      const onAbort = () => {
        const reason = d.reason();
        if (connected) noteSentAll(reason);
        fail(reason);
      };
      d.signal.addEventListener('abort', onAbort, { once: true });
      ws.once('open', () => {
        d.signal.removeEventListener('abort', onAbort);
        d.dispose();
        ws.removeAllListeners('unexpected-response');
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => {
        void errorFromIncoming(res, 'GET', url.pathname).then(fail);
      });
      ws.once('error', (error: NodeJS.ErrnoException) => {
        if (d.reason()) return fail(d.reason());
        fail(socketError(what, error, true));
      });
    });
  }

  /** What printing a transport shows: where it goes, never how it authenticates. */
  toJSON(): Record<string, unknown> {
    return {
      socketPath: this.socketPath,
      url: this.socketPath ? undefined : this.baseUrl.origin,
      project: this.project,
    };
  }

  [inspect.custom](): string {
    return `LxdTransport ${inspect(this.toJSON())}`;
  }
}

interface PreparedCall {
  method: Method;
  url: URL;
  headers: Record<string, string>;
  body: HttpBody;
  onUploadProgress: ((sent: number) => void) | undefined;
}

function connectionsFor(opts: LxdTransportOptions): Connections {
  if (opts.url) {
    let baseUrl: URL;
    try {
      baseUrl = new URL(opts.url);
    } catch (error) {
      throw new InvalidArgumentError({ message: 'url is not a URL', argument: 'url', backend: BACKEND, cause: error });
    }
    if (baseUrl.protocol !== 'https:') {
      throw new InvalidArgumentError({
        message: 'LXD over the network is HTTPS only',
        argument: 'url',
        backend: BACKEND,
      });
    }
    const trust: TlsTrust = { cert: opts.cert, key: opts.key, ca: opts.ca, insecure: opts.insecure };
    // LXD's serverCert pin: that certificate alone, whatever names it carries (LXD's self-signed
    // certificates rarely name the address they are reached at).
    if (opts.serverCert) trust.serverCert = opts.serverCert;
    const pin = pinOf(trust, BACKEND);
    return {
      socketPath: undefined,
      baseUrl,
      agent: createAgent(baseUrl, trust, { keepAlive: true, backend: BACKEND }),
      tls: tlsOptions(pin ? { cert: opts.cert, key: opts.key } : trust) as TlsConnect,
      pin,
    };
  }
  if (!opts.socketPath || typeof opts.socketPath !== 'string') {
    throw new InvalidArgumentError({
      message: 'No LXD socket found and no url given',
      argument: 'socketPath',
      backend: BACKEND,
    });
  }
  return {
    socketPath: opts.socketPath,
    baseUrl: new URL('http://lxd'),
    agent: new http.Agent({ keepAlive: true }),
    tls: {},
    pin: undefined,
  };
}
