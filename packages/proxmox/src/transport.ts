import type * as http from 'node:http';
import {
  apiErrorFromStatus,
  backoffDelay,
  type CallOptions,
  ConnectionError,
  type Deadline,
  exchange,
  InvalidArgumentError,
  type Logger,
  type QueryValue,
  query,
  type RetryPolicy,
  redactingLogger,
  silentLogger,
  sleep,
  withDeadline,
} from '@vmplane/common';
import { type Authenticator, type PasswordCredentials, TicketAuth, TokenAuth, type TokenCredentials } from './auth.js';
import { LruCache, type ProxmoxCache } from './cache.js';
import { BACKEND } from './errors.js';
import { normaliseBooleans } from './normalise.js';
import { createAgent, type TlsOptions } from './tls.js';

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

export interface TransportStats {
  /** HTTP requests sent, logins and retries included. */
  requests: number;
  retries: number;
  cacheHits: number;
}

export type ProxmoxAuthOptions =
  | (PasswordCredentials & { tokenId?: undefined; tokenSecret?: undefined })
  | (TokenCredentials & { username?: undefined; password?: undefined });

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
    retry?: RetryPolicy | undefined;
    /** Renew tickets once they are this old (ms, default 1 h; PVE tickets live 2 h). */
    ticketRenewAfter?: number | undefined;
    /** Clock in ms, injectable for tests that move time (ticket renewal, cache TTLs). */
    now?: (() => number) | undefined;
    /** Concurrent connections to the server (default 16). */
    maxSockets?: number | undefined;
  };

// Statuses worth another try for a read: the proxy or the server was briefly unable to answer.
const RETRY_STATUS = new Set([429, 502, 503, 504]);

/** The one transport: auth, JSON, the `{data}` envelope, typed errors, retries, logging and the cache. */
export class ProxmoxTransport {
  readonly baseUrl: URL;
  readonly apiUrl: string;
  readonly agent: http.Agent;
  readonly auth: Authenticator;
  readonly cache: ProxmoxCache;
  readonly logger: Logger;
  readonly stats: TransportStats = { requests: 0, retries: 0, cacheHits: 0 };
  readonly #timeout: number;
  readonly #retry: RetryPolicy;

  constructor(opts: ProxmoxClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new InvalidArgumentError({
        message: `Invalid baseUrl ${JSON.stringify(opts.baseUrl)}`,
        argument: 'baseUrl',
        backend: BACKEND,
      });
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new InvalidArgumentError({ message: 'baseUrl must be http(s)', argument: 'baseUrl', backend: BACKEND });
    }
    // Accept `.../api2/json` too, since people paste it from other clients.
    // A URL's pathname is never empty ('/' at least), so keep the prefix as a string of its own.
    const prefix = base.pathname.replace(/\/api2\/json\/?$/, '').replace(/\/+$/, '');
    base.pathname = prefix || '/';
    this.baseUrl = base;
    this.apiUrl = `${base.origin}${prefix}/api2/json`;
    this.agent = createAgent(base, opts, opts.maxSockets);
    this.logger = redactingLogger(opts.logger ?? silentLogger);
    this.cache = opts.cache ?? new LruCache(opts.now ? { now: opts.now } : {});
    this.#timeout = opts.timeout ?? 30_000;
    this.#retry = opts.retry ?? {};
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
    const cacheKey = method === 'GET' && spec.cache ? `${path}${query(flatParams(spec.params))}` : undefined;
    if (cacheKey && !spec.fresh) {
      const hit = this.cache.get(cacheKey);
      if (hit !== undefined) {
        this.stats.cacheHits++;
        return structuredClone(hit) as T;
      }
    }
    const timeout = spec.timeout ?? this.#timeout;
    const data = await withDeadline({ signal: spec.signal, timeout }, BACKEND, (d) =>
      this.#withAuth<T>(method, path, spec.params, d),
    );
    if (cacheKey && spec.cache) this.cache.set(cacheKey, structuredClone(data), spec.cache.ttl, spec.cache.tags);
    return data;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  async #withAuth<T>(method: Method, path: string, params: Params | undefined, d: Deadline): Promise<T> {
    const write = method !== 'GET';
    const headers = await abortable(this.auth.headers(write), d.signal);
    try {
      return await this.#withRetries<T>(method, path, params, headers, d);
    } catch (error) {
      // One fresh login and one retry when PVE no longer accepts the ticket. A 401 means PVE refused
      // the request before running it, so this is safe for writes too.
      if (isStatus(error, 401) && (await abortable(this.auth.refreshAfterUnauthorized(headers), d.signal))) {
        this.logger.info('proxmox ticket refused; logged in again and retrying once', { method, path });
        const again = await abortable(this.auth.headers(write), d.signal);
        return this.#withRetries<T>(method, path, params, again, d);
      }
      throw error;
    }
  }

  async #withRetries<T>(
    method: Method,
    path: string,
    params: Params | undefined,
    auth: Record<string, string>,
    d: Deadline,
  ): Promise<T> {
    const attempts = Math.max(1, this.#retry.attempts ?? 4);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#send<T>(method, path, params, auth, d.signal, attempt);
      } catch (error) {
        const wait = attempt + 1 < attempts ? this.#retryDelay(method, error, attempt) : undefined;
        if (wait === undefined || d.signal.aborted) throw error;
        this.stats.retries++;
        this.logger.warn('proxmox request failed; retrying', {
          method,
          path,
          attempt: attempt + 1,
          delayMs: wait,
          error: error instanceof Error ? error.message : String(error),
        });
        await sleep(wait, d.signal);
      }
    }
  }

  /** How long to wait before retrying, or undefined when this failure must not be retried. */
  #retryDelay(method: Method, error: unknown, attempt: number): number | undefined {
    const delay = backoffDelay(attempt, { initial: 200, max: 5_000, ...this.#retry });
    if (error instanceof ConnectionError) {
      // A write that may have reached the server is never repeated: it might run twice.
      if (!error.sent || method === 'GET') return delay;
      return undefined;
    }
    if (method === 'GET' && error instanceof Error && 'status' in error && RETRY_STATUS.has(error.status as number)) {
      const after = (error as { retryAfter?: number }).retryAfter;
      return after !== undefined ? Math.min(after * 1000, this.#retry.max ?? 5_000) : delay;
    }
    return undefined;
  }

  async #send<T>(
    method: Method,
    path: string,
    params: Params | undefined,
    auth: Record<string, string>,
    signal: AbortSignal,
    attempt: number,
  ): Promise<T> {
    const started = performance.now();
    const inQuery = method === 'GET' || method === 'DELETE';
    const url = new URL(`${this.apiUrl}${path}${inQuery ? query(flatParams(params)) : ''}`);
    const headers: Record<string, string> = { Accept: 'application/json', ...auth };
    let body: string | undefined;
    if (!inQuery) {
      body = JSON.stringify(jsonParams(params));
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    this.stats.requests++;
    const res = await exchange({ method, url, headers, body, agent: this.agent, signal, backend: BACKEND });
    const text = await res.text();
    const ms = Math.round(performance.now() - started);
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.status < 200 || res.status >= 300) {
      this.logger.debug('proxmox request failed', { method, path, status: res.status, ms, attempt });
      throw this.#error(method, path, res, parsed, text);
    }
    this.logger.debug('proxmox request', { method, path, status: res.status, ms, attempt });
    const data = (parsed as { data?: unknown } | undefined)?.data;
    return normaliseBooleans(data) as T;
  }

  #error(
    method: Method,
    path: string,
    res: { status: number; statusMessage: string | undefined; headers: http.IncomingHttpHeaders },
    parsed: unknown,
    text: string,
  ) {
    const envelope = (parsed && typeof parsed === 'object' ? parsed : {}) as {
      errors?: unknown;
      message?: unknown;
    };
    const errors: Record<string, string> = {};
    if (envelope.errors && typeof envelope.errors === 'object') {
      for (const [k, v] of Object.entries(envelope.errors as Record<string, unknown>)) errors[k] = String(v).trim();
    }
    const reason = res.statusMessage?.trim();
    const message =
      (typeof envelope.message === 'string' && envelope.message.trim()) ||
      reason ||
      (parsed === undefined && text.trim() ? text.trim().slice(0, 200) : '') ||
      `HTTP ${res.status}`;
    const retryAfterHeader = res.headers['retry-after'];
    const retryAfter = retryAfterHeader === undefined ? undefined : Number(retryAfterHeader);
    const fieldSummary = Object.entries(errors)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    return apiErrorFromStatus({
      status: res.status,
      backend: BACKEND,
      message: `${method} ${path}: ${message}${fieldSummary ? ` (${fieldSummary})` : ''}`,
      body: parsed ?? text,
      errors,
      method,
      path,
      retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined,
    });
  }

  // The login itself: unauthenticated, with its own deadline so that no single caller's abort
  // cancels a login other callers are waiting for.
  async #login(body: Record<string, string>): Promise<Record<string, unknown>> {
    return withDeadline({ timeout: this.#timeout }, BACKEND, async (d) => {
      const data = await this.#withRetries<Record<string, unknown>>('POST', '/access/ticket', body, {}, d);
      return data ?? {};
    });
  }
}

function isStatus(error: unknown, status: number): boolean {
  return error instanceof Error && 'status' in error && (error as { status: unknown }).status === status;
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
