import type * as http from 'node:http';
import {
  type CallOptions,
  checkCallOptions,
  createAgent,
  type Deadline,
  exchange,
  type HttpBody,
  InvalidArgumentError,
  type Logger,
  type QueryValue,
  query,
  type RetryPolicy,
  redactingLogger,
  retry,
  retryDecision,
  silentLogger,
  UnauthorizedError,
  withDeadline,
} from '@vmplane/common';
import { type Authenticator, type PasswordCredentials, TicketAuth, TokenAuth, type TokenCredentials } from './auth.js';
import { LruCache, type ProxmoxCache } from './cache.js';
import { unwrap } from './envelope.js';
import { BACKEND } from './errors.js';
import { options } from './options.js';
import { type TlsOptions, trustOf } from './tls.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export type Params = Readonly<Record<string, QueryValue | readonly string[] | Record<string, unknown>>>;

/** Options of a read: the call options, plus whether the cache may answer. */
export interface ReadOptions extends CallOptions {
  /** Skip the cache and read from the server (the answer still refreshes the cache). */
  fresh?: boolean | undefined;
}

export interface RequestSpec extends ReadOptions {
  params?: Params | undefined;
  /** Cache this GET's answer for `ttl` ms under these tags. */
  cache?: { ttl: number; tags: readonly string[] } | undefined;
}

/** A request body other than JSON parameters: a multipart upload, say. */
export interface RawBody {
  /** Makes the body of one attempt: its media type, its length when known, and its bytes. */
  open(): { contentType: string; length?: number | undefined; data: HttpBody };
  /**
   * Whether `open()` makes the same body again (a file read anew). Only such a body is sent a
   * second time, after a 401 or a connection that failed before sending; any other goes out once,
   * after the ticket was renewed if it was due.
   */
  reopenable?: boolean | undefined;
}

export interface SendSpec extends CallOptions {
  body: RawBody;
}

export interface TransportStats {
  /** HTTP requests sent, logins and retries included. */
  requests: number;
  retries: number;
  cacheHits: number;
}

export type ProxmoxAuthOptions =
  | (PasswordCredentials & { tokenId?: undefined; tokenSecret?: undefined })
  | (TokenCredentials & { username?: undefined; password?: undefined });

export interface ProxmoxRetryOptions extends RetryPolicy {
  /** The longest `Retry-After` worth waiting for, in ms (default 60 s); a longer one fails at once. */
  maxRetryAfter?: number | undefined;
}

export type ProxmoxClientOptions = ProxmoxAuthOptions &
  TlsOptions & {
    /** The server as PVE's web UI shows it, `https://pve.example.com:8006`; `/api2/json` is added. */
    baseUrl: string;
    logger?: Logger | undefined;
    /** The read cache (in-memory LRU by default; pass `noCache` to turn it off). */
    cache?: ProxmoxCache | undefined;
    /** Default timeout of a call in ms (default 30 s). */
    timeout?: number | undefined;
    /** Retries of reads and of connections that never reached the server. */
    retry?: ProxmoxRetryOptions | undefined;
    /** Renew tickets once they are this old (ms, default 1 h; PVE tickets live 2 h). */
    ticketRenewAfter?: number | undefined;
    /** Clock in ms, injectable for tests that move time (ticket renewal, cache TTLs). */
    now?: (() => number) | undefined;
    /** Concurrent connections to the server (default 16). */
    maxSockets?: number | undefined;
  };

type Payload = { kind: 'params'; params: Params | undefined } | { kind: 'raw'; body: RawBody };

let agentOfTransport: (t: ProxmoxTransport) => http.Agent;

/**
 * The one transport: auth, JSON, the `{data}` envelope, typed errors, retries, logging and the
 * cache. Its connection pool and credentials live in private fields, so printing the transport
 * (or the client holding it) shows no ticket, token or header of a request in flight.
 */
export class ProxmoxTransport {
  readonly baseUrl: URL;
  readonly apiUrl: string;
  readonly auth: Authenticator;
  readonly cache: ProxmoxCache;
  readonly logger: Logger;
  readonly stats: TransportStats = { requests: 0, retries: 0, cacheHits: 0 };
  readonly #agent: http.Agent;
  readonly #timeout: number;
  readonly #retry: ProxmoxRetryOptions;

  static {
    agentOfTransport = (t) => t.#agent;
  }

  constructor(opts: ProxmoxClientOptions) {
    if (typeof opts !== 'object' || opts === null) {
      throw new InvalidArgumentError({ message: 'options are required', argument: 'options', backend: BACKEND });
    }
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new InvalidArgumentError({
        message: `Invalid baseUrl ${JSON.stringify(String(opts.baseUrl).slice(0, 100))}`,
        argument: 'baseUrl',
        backend: BACKEND,
      });
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new InvalidArgumentError({ message: 'baseUrl must be http(s)', argument: 'baseUrl', backend: BACKEND });
    }
    if (base.username || base.password || base.search || base.hash) {
      throw new InvalidArgumentError({
        message: 'baseUrl must be scheme, host, port and path only (no credentials, query or fragment)',
        argument: 'baseUrl',
        backend: BACKEND,
      });
    }
    checkCallOptions({ timeout: opts.timeout }, BACKEND);
    // Accept `.../api2/json` too, since people paste it from other clients.
    // A URL's pathname is never empty ('/' at least), so keep the prefix as a string of its own.
    const prefix = base.pathname.replace(/\/api2\/json\/?$/, '').replace(/\/+$/, '');
    base.pathname = prefix || '/';
    this.baseUrl = base;
    this.apiUrl = `${base.origin}${prefix}/api2/json`;
    this.#agent = createAgent(base, trustOf(opts), { maxSockets: opts.maxSockets ?? 16, backend: BACKEND });
    this.logger = redactingLogger(opts.logger ?? silentLogger);
    this.cache = opts.cache ?? new LruCache(opts.now ? { now: opts.now } : {});
    this.#timeout = opts.timeout ?? 30_000;
    this.#retry = retryPolicy(opts.retry);
    if (opts.tokenId !== undefined) {
      this.auth = new TokenAuth({ tokenId: opts.tokenId, tokenSecret: opts.tokenSecret });
    } else {
      this.auth = new TicketAuth(
        { username: opts.username, password: opts.password, realm: opts.realm, otp: opts.otp },
        (body) => this.#login(body),
        { renewAfter: opts.ticketRenewAfter, ...(opts.now ? { now: opts.now } : {}) },
      );
    }
  }

  /** The default timeout of a call, in ms. */
  get timeout(): number {
    return this.#timeout;
  }

  get<T>(path: string, spec: RequestSpec = {}): Promise<T> {
    return this.request<T>('GET', path, spec);
  }
  post<T>(path: string, spec: RequestSpec = {}): Promise<T> {
    return this.request<T>('POST', path, spec);
  }
  put<T>(path: string, spec: RequestSpec = {}): Promise<T> {
    return this.request<T>('PUT', path, spec);
  }
  delete<T>(path: string, spec: RequestSpec = {}): Promise<T> {
    return this.request<T>('DELETE', path, spec);
  }

  /** One API call: `path` is below `/api2/json` and built with the `path` tag. */
  async request<T>(method: Method, path: string, spec: RequestSpec = {}): Promise<T> {
    checkRequest(method, path);
    spec = options(spec, 'spec');
    const params = spec.params;
    const cacheKey = method === 'GET' && spec.cache ? `${path}${query(flatParams(params))}` : undefined;
    if (cacheKey && !spec.fresh) {
      const hit = this.cache.get(cacheKey);
      if (hit !== undefined) {
        this.stats.cacheHits++;
        return structuredClone(hit) as T;
      }
    }
    const timeout = spec.timeout ?? this.#timeout;
    const data = await withDeadline({ signal: spec.signal, timeout }, BACKEND, (d) =>
      this.#withAuth<T>(method, path, { kind: 'params', params }, d),
    );
    if (cacheKey && spec.cache) this.cache.set(cacheKey, structuredClone(data), spec.cache.ttl, spec.cache.tags);
    return data;
  }

  /**
   * A call with a body of its own (a multipart upload), with the same auth, CSRF token, envelope
   * and typed errors as every other call. A reopenable body gets the one re-login and retry after a
   * 401 (PVE checks the ticket before it reads the body, so nothing ran); any other body is sent
   * once, after renewing a ticket that was due, since a consumed stream cannot be sent again.
   */
  async send<T>(method: 'POST' | 'PUT', path: string, spec: SendSpec): Promise<T> {
    checkRequest(method, path);
    if (typeof spec?.body?.open !== 'function') {
      throw new InvalidArgumentError({
        message: 'spec.body.open must be a function',
        argument: 'body',
        backend: BACKEND,
      });
    }
    const timeout = spec.timeout ?? this.#timeout;
    return withDeadline({ signal: spec.signal, timeout }, BACKEND, (d) =>
      this.#withAuth<T>(method, path, { kind: 'raw', body: spec.body }, d),
    );
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  async #withAuth<T>(method: Method, path: string, payload: Payload, d: Deadline): Promise<T> {
    const write = method !== 'GET';
    const headers = await abortable(this.auth.headers(write), d.signal);
    try {
      return await this.#withRetries<T>(method, path, payload, headers, d);
    } catch (error) {
      // One fresh login and one retry when PVE no longer accepts the ticket. A 401 means PVE refused
      // the request before running it, so this is safe for writes too; a body that cannot be made
      // again is not repeated, but the next call gets the fresh session.
      if (!(error instanceof UnauthorizedError) || error.backend !== BACKEND) throw error;
      const replayable = payload.kind === 'params' || payload.body.reopenable === true;
      if (!(await abortable(this.auth.refreshAfterUnauthorized(headers), d.signal)) || !replayable) throw error;
      this.logger.info('proxmox ticket refused; logged in again and retrying once', { method, path });
      const again = await abortable(this.auth.headers(write), d.signal);
      return this.#withRetries<T>(method, path, payload, again, d);
    }
  }

  #withRetries<T>(
    method: Method,
    path: string,
    payload: Payload,
    auth: Record<string, string>,
    d: Deadline,
  ): Promise<T> {
    const once = payload.kind === 'raw' && payload.body.reopenable !== true;
    const { maxRetryAfter, ...policy } = this.#retry;
    const rule = { idempotent: method === 'GET', maxRetryAfter };
    return retry((attempt) => this.#send<T>(method, path, payload, auth, d.signal, attempt), {
      ...policy,
      attempts: once ? 1 : (policy.attempts ?? 4),
      signal: d.signal,
      decide: (error) => retryDecision(error, rule),
      onRetry: ({ attempt, delay, error }) => {
        this.stats.retries++;
        this.logger.warn('proxmox request failed; retrying', {
          method,
          path,
          attempt,
          delayMs: delay,
          error: error instanceof Error ? error.message : String(error),
        });
      },
    });
  }

  async #send<T>(
    method: Method,
    path: string,
    payload: Payload,
    auth: Record<string, string>,
    signal: AbortSignal,
    attempt: number,
  ): Promise<T> {
    const started = performance.now();
    const headers: Record<string, string> = { Accept: 'application/json', ...auth };
    let url: URL;
    let body: HttpBody;
    if (payload.kind === 'raw') {
      url = new URL(`${this.apiUrl}${path}`);
      const raw = payload.body.open();
      headers['Content-Type'] = raw.contentType;
      if (raw.length !== undefined) headers['Content-Length'] = String(raw.length);
      body = raw.data;
    } else if (method === 'GET' || method === 'DELETE') {
      url = new URL(`${this.apiUrl}${path}${query(flatParams(payload.params))}`);
    } else {
      url = new URL(`${this.apiUrl}${path}`);
      const json = JSON.stringify(jsonParams(payload.params));
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(json));
      body = json;
    }
    this.stats.requests++;
    const res = await exchange({ method, url, headers, body, agent: this.#agent, signal, backend: BACKEND });
    const text = await res.text();
    const fields = { method, path, status: res.status, ms: Math.round(performance.now() - started), attempt };
    try {
      const data = unwrap(method, path, res, text) as T;
      this.logger.debug('proxmox request', fields);
      return data;
    } catch (error) {
      this.logger.debug('proxmox request failed', fields);
      throw error;
    }
  }

  // The login itself: unauthenticated, with its own deadline so that no single caller's abort
  // cancels a login other callers are waiting for.
  async #login(body: Record<string, string>): Promise<Record<string, unknown>> {
    return withDeadline({ timeout: this.#timeout }, BACKEND, async (d) => {
      const data = await this.#withRetries<Record<string, unknown>>(
        'POST',
        '/access/ticket',
        { kind: 'params', params: body },
        {},
        d,
      );
      return data ?? {};
    });
  }
}

const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE']);

// Paths come from the `path` tag; anything else (a full URL, a query) would escape `/api2/json`.
function checkRequest(method: string, path: string): void {
  if (!METHODS.has(method)) {
    throw new InvalidArgumentError({
      message: 'method must be GET, POST, PUT or DELETE',
      argument: 'method',
      backend: BACKEND,
    });
  }
  if (typeof path !== 'string' || !/^\/[^?#\s]*$/.test(path)) {
    throw new InvalidArgumentError({
      message: 'path must start with / and carry no query, fragment or spaces (build it with the path tag)',
      argument: 'path',
      backend: BACKEND,
    });
  }
}

/** The retry options the transport uses, picked one by one from the caller's, with its defaults. */
function retryPolicy(opts: ProxmoxRetryOptions | undefined): ProxmoxRetryOptions {
  const o = opts ?? {};
  const policy: ProxmoxRetryOptions = { attempts: o.attempts ?? 4, initial: o.initial ?? 200, max: o.max ?? 5_000 };
  if (o.factor !== undefined) policy.factor = o.factor;
  if (o.jitter !== undefined) policy.jitter = o.jitter;
  if (o.random !== undefined) policy.random = o.random;
  if (o.maxRetryAfter !== undefined) policy.maxRetryAfter = o.maxRetryAfter;
  return policy;
}

/** The transport's connection pool, for the console websockets; not part of the public API. */
export function agentOf(t: ProxmoxTransport): http.Agent {
  return agentOfTransport(t);
}

/** Waits for a shared promise, but lets this caller leave early when its own signal fires. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function flatParams(params: Params | undefined): Record<string, QueryValue> {
  const out: Record<string, QueryValue> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null) continue;
    out[k] = typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : (v as QueryValue);
  }
  return out;
}

// JSON bodies with PVE's own spelling of booleans (1/0), which every PVE version accepts.
function jsonParams(params: Params | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null) continue;
    out[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return out;
}
