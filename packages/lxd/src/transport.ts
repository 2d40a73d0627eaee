import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import {
  apiErrorFromStatus,
  backoffDelay,
  type CallOptions,
  ConnectionError,
  deadline,
  exchange,
  type HttpBody,
  type HttpResponse,
  InvalidArgumentError,
  type Logger,
  type QueryValue,
  query as queryString,
  type RetryPolicy,
  redactingLogger,
  redactText,
  ServerError,
  silentLogger,
  sleep,
} from '@vmplane/common';
import WebSocket from 'ws';
import { BACKEND } from './errors.js';

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
  /** Default per-call timeout in ms for plain requests (not for operation waits). Default 30 s. */
  timeout?: number | undefined;
  /** Retries of reads and of requests that never left. Default 3 attempts, 100 ms doubling to 2 s. */
  retry?: RetryPolicy | undefined;
  logger?: Logger | undefined;
  userAgent?: string | undefined;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

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
  /** Overrides the transport's project for this call; null sends none. */
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

interface Envelope {
  type?: string;
  status_code?: number;
  operation?: string;
  error_code?: number;
  error?: string;
  metadata?: unknown;
}

const IDEMPOTENT = new Set<Method>(['GET', 'HEAD']);
const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** The one way to talk to an LXD daemon: auth (socket or client certificate), timeouts, retries, logging, envelope. */
export class LxdTransport {
  readonly socketPath: string | undefined;
  readonly baseUrl: URL;
  readonly project: string | undefined;
  readonly logger: Logger;
  private readonly agent: http.Agent;
  private readonly tls: https.AgentOptions;
  private readonly timeout: number;
  private readonly retry: Required<Pick<RetryPolicy, 'attempts'>> & RetryPolicy;
  private readonly userAgent: string;

  constructor(private readonly options: LxdTransportOptions) {
    const opts = options;
    this.logger = redactingLogger(opts.logger ?? silentLogger);
    this.project = opts.project;
    this.timeout = opts.timeout ?? 30_000;
    this.retry = { attempts: 3, initial: 100, max: 2_000, ...opts.retry };
    this.userAgent = opts.userAgent ?? 'vmplane-lxd/0.1';
    if (opts.url) {
      this.socketPath = undefined;
      this.baseUrl = new URL(opts.url);
      if (this.baseUrl.protocol !== 'https:') {
        throw new InvalidArgumentError({
          message: 'LXD over the network is HTTPS only',
          argument: 'url',
          backend: BACKEND,
        });
      }
      this.tls = tlsOptions(opts);
      this.agent = new https.Agent({ keepAlive: true, ...this.tls });
    } else {
      if (!opts.socketPath) {
        throw new InvalidArgumentError({
          message: 'No LXD socket found and no url given',
          argument: 'socketPath',
          backend: BACKEND,
        });
      }
      this.socketPath = opts.socketPath;
      this.baseUrl = new URL('http://lxd');
      this.tls = {};
      this.agent = new http.Agent({ keepAlive: true });
    }
  }

  /** The per-call timeout used when a call gives none. */
  get defaultTimeout(): number {
    return this.timeout;
  }

  /** The same daemon and credentials, another default project. */
  withProject(project: string): LxdTransport {
    return new LxdTransport({ ...this.options, project });
  }

  /** Closes idle keep-alive connections so the process can exit. */
  close(): void {
    this.agent.destroy();
  }

  url(path: string, params: Readonly<Record<string, QueryValue>> = {}, project?: string | null): URL {
    const p = project === null ? undefined : (project ?? this.project);
    return new URL(`${path}${queryString({ ...params, project: p })}`, this.baseUrl);
  }

  /** A JSON request whose answer is LXD's envelope. */
  async request<T>(req: LxdRequest): Promise<LxdResponse<T>> {
    const res = await this.send(req, true);
    const envelope = await readEnvelope(res);
    return {
      type: envelope.type === 'async' ? 'async' : 'sync',
      status: res.status,
      metadata: envelope.metadata as T,
      etag: headerValue(res.headers.etag),
      operation: envelope.operation ?? '',
    };
  }

  /**
   * A request whose answer body the caller reads (file content, an export). Errors are still
   * typed from the envelope. The deadline runs until the body has been read or dropped.
   */
  async raw(req: LxdRequest): Promise<HttpResponse> {
    return this.send(req, false);
  }

  private async send(req: LxdRequest, bufferAnswer: boolean): Promise<HttpResponse> {
    const method = req.method;
    const url = this.url(req.path, req.query, req.project);
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, ...req.headers };
    let body: HttpBody;
    if (req.rawBody !== undefined) body = req.rawBody;
    else if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['Content-Type'] = 'application/json';
    }
    if (req.etag) headers['If-Match'] = req.etag;
    // A streamed body cannot be sent twice: such a request is attempted once.
    const attempts = body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) ? 1 : this.retry.attempts;
    const d = deadline({ signal: req.signal, timeout: req.timeout ?? this.timeout }, BACKEND);
    let keepDeadline = false;
    try {
      for (let attempt = 0; ; attempt++) {
        const started = performance.now();
        try {
          const res = await exchange({
            method,
            url,
            socketPath: this.socketPath,
            headers,
            body,
            agent: this.agent,
            signal: d.signal,
            backend: BACKEND,
            onUploadProgress: req.onUploadProgress,
          });
          this.logger.debug('lxd request', {
            method,
            path: url.pathname,
            status: res.status,
            ms: Math.round(performance.now() - started),
          });
          if (res.status >= 400) {
            const error = await errorFrom(res, method, url.pathname);
            if (IDEMPOTENT.has(method) && RETRYABLE_STATUS.has(res.status) && attempt + 1 < attempts) {
              await this.pause(attempt, d.signal, error);
              continue;
            }
            throw error;
          }
          if (!bufferAnswer) {
            keepDeadline = true;
            res.stream.once('close', () => d.dispose());
          }
          return res;
        } catch (error) {
          if (d.reason()) throw d.reason();
          const retryable =
            error instanceof ConnectionError && (IDEMPOTENT.has(method) || !error.sent) && attempt + 1 < attempts;
          if (!retryable) throw error;
          await this.pause(attempt, d.signal, error);
        }
      }
    } catch (error) {
      throw d.reason() ?? error;
    } finally {
      if (!keepDeadline) d.dispose();
    }
  }

  private async pause(attempt: number, signal: AbortSignal, error: unknown): Promise<void> {
    const delay = backoffDelay(attempt, this.retry);
    this.logger.warn('lxd request failed, retrying', {
      attempt: attempt + 1,
      delayMs: delay,
      error: error instanceof Error ? redactText(error.message) : String(error),
    });
    await sleep(delay, signal);
  }

  /**
   * Asks LXD to switch a fresh connection to another protocol (`sftp`) and hands over the raw
   * connection, which the caller then owns. The deadline covers the handshake only.
   */
  upgrade(
    path: string,
    protocol: string,
    opts: CallOptions & { project?: string | null | undefined } = {},
  ): Promise<Duplex> {
    const url = this.url(path, {}, opts.project);
    const d = deadline({ signal: opts.signal, timeout: opts.timeout ?? this.timeout }, BACKEND);
    if (d.reason()) {
      d.dispose();
      return Promise.reject(d.reason());
    }
    return new Promise<Duplex>((resolve, reject) => {
      const headers = { Connection: 'Upgrade', Upgrade: protocol, 'User-Agent': this.userAgent };
      const target = `${url.pathname}${url.search}`;
      const req = this.socketPath
        ? http.request({ socketPath: this.socketPath, path: target, headers, agent: false })
        : https.request({
            ...this.tls,
            host: url.hostname,
            port: url.port || 8443,
            path: target,
            headers,
            agent: false,
          });
      let sent = false;
      const settle = (error: unknown, socket?: Duplex) => {
        d.signal.removeEventListener('abort', onAbort);
        d.dispose();
        if (socket) resolve(socket);
        else reject(error);
      };
      const onAbort = () => {
        req.destroy();
        settle(d.reason());
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
      req.once('finish', () => {
        sent = true;
      });
      req.once('error', (error: NodeJS.ErrnoException) => {
        if (d.reason()) return;
        settle(socketError(`upgrade ${url.pathname}`, error, sent));
      });
      req.end();
    });
  }

  /** Opens a websocket to the daemon (operation fds, events, console). */
  websocket(
    path: string,
    params: Readonly<Record<string, QueryValue>> = {},
    opts: WebSocketOptions = {},
  ): Promise<WebSocket> {
    const url = this.url(path, params, opts.project);
    const target = this.socketPath
      ? `ws+unix://${this.socketPath}:${url.pathname}${url.search}`
      : `wss://${url.host}${url.pathname}${url.search}`;
    const d = deadline({ signal: opts.signal, timeout: opts.timeout ?? this.timeout }, BACKEND);
    return new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(target, {
        ...this.tls,
        headers: { 'User-Agent': this.userAgent },
        perMessageDeflate: false,
      });
      // Frames can arrive in the tick the socket opens, before any promise continuation runs;
      // listeners attached here are the only ones sure to see them.
      opts.onSocket?.(ws);
      const fail = (error: unknown) => {
        d.dispose();
        ws.removeAllListeners('open');
        ws.terminate();
        reject(error);
      };
      const onAbort = () => fail(d.reason());
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
        fail(socketError(`websocket ${url.pathname}`, error, true));
      });
    });
  }
}

/** A failed connection; refused or missing sockets mean the request never left. */
function socketError(what: string, error: NodeJS.ErrnoException, mayHaveSent: boolean): ConnectionError {
  return new ConnectionError({
    message: `${what}: ${redactText(error.message)}`,
    backend: BACKEND,
    sent: mayHaveSent && !['ECONNREFUSED', 'ENOENT'].includes(error.code ?? ''),
    syscallCode: error.code,
    cause: error,
  });
}

/** Reads an answer that is not the upgrade asked for into the typed error its envelope names. */
function errorFromIncoming(res: http.IncomingMessage, method: string, path: string): Promise<Error> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', () => {});
    res.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve(errorFromText(res.statusCode ?? 500, text, res.headers, method, path));
    });
  });
}

export interface WebSocketOptions extends CallOptions {
  project?: string | null;
  /** Called with the socket as soon as it exists, before it opens: attach 'message' listeners here. */
  onSocket?: (ws: WebSocket) => void;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readEnvelope(res: HttpResponse): Promise<Envelope> {
  const text = await res.text();
  try {
    return JSON.parse(text) as Envelope;
  } catch {
    throw new ServerError({
      status: res.status,
      message: `LXD answered something that is not JSON: ${text.slice(0, 120)}`,
      backend: BACKEND,
      body: text,
    });
  }
}

async function errorFrom(res: HttpResponse, method: string, path: string) {
  let text: string | undefined;
  try {
    text = await res.text();
  } catch {}
  return errorFromText(res.status, text, res.headers, method, path);
}

/** The typed error an LXD error answer names: its envelope's message and code, or the bare status. */
function errorFromText(
  status: number,
  text: string | undefined,
  headers: http.IncomingHttpHeaders,
  method: string,
  path: string,
) {
  let envelope: Envelope = {};
  let body: unknown = text;
  try {
    envelope = JSON.parse(text ?? '') as Envelope;
    body = envelope;
  } catch {}
  return apiErrorFromStatus({
    status,
    code: envelope.error_code,
    message: envelope.error ? redactText(envelope.error) : `${method} ${path}: HTTP ${status}`,
    body,
    backend: BACKEND,
    method,
    path,
    requestId: headerValue(headers['x-request-id']),
  });
}

function tlsOptions(opts: LxdTransportOptions): https.AgentOptions {
  const out: https.AgentOptions = {};
  if (opts.cert) out.cert = opts.cert;
  if (opts.key) out.key = opts.key;
  if (opts.insecure) {
    out.rejectUnauthorized = false;
    return out;
  }
  if (opts.serverCert) {
    // Pinning: the server's own certificate is the only trust anchor, and names do not matter,
    // since LXD's self-signed certificates rarely name the address they are reached at.
    const pinned = new X509Certificate(opts.serverCert).fingerprint256;
    out.ca = opts.serverCert;
    out.checkServerIdentity = (_host: string, cert: PeerCertificate) =>
      cert.fingerprint256 === pinned ? undefined : new Error('LXD server certificate does not match the pinned one');
    return out;
  }
  if (opts.ca) out.ca = opts.ca;
  return out;
}
