/**
 * The CLI's HTTP client: Node's own fetch, the bearer token on every request, and every failure
 * turned into one of errors.ts's classes so that rendering happens in one place.
 */
import { ApiError, isConnectionFailure, parseErrorBody, UnreachableError, UsageError } from './errors.js';

export interface RequestOptions {
  method?: string;
  /** Serialised as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
}

export class Client {
  readonly baseUrl: string;
  readonly #token: string | undefined;

  constructor(baseUrl: string, token: string | undefined) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#token = token;
  }

  /** The URL of a path (each dynamic segment already encoded by the caller with `segment`). */
  url(path: string, query?: RequestOptions['query']): URL {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /** Headers for a websocket upgrade, which cannot go through fetch. */
  authHeaders(): Record<string, string> {
    return this.#token ? { authorization: `Bearer ${this.#token}` } : {};
  }

  /** Sends the request; a non-2xx answer becomes an ApiError, no answer an UnreachableError. */
  async request(path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeaders(), ...opts.headers };
    const init: RequestInit = { method: opts.method ?? 'GET', headers };
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (opts.signal) init.signal = opts.signal;
    let response: Response;
    try {
      response = await fetch(this.url(path, opts.query), init);
    } catch (error) {
      if (isConnectionFailure(error)) throw new UnreachableError(this.baseUrl, error);
      throw error;
    }
    if (!response.ok) {
      const { message, code } = parseErrorBody(response.status, await response.text().catch(() => ''));
      throw new ApiError(response.status, message, code);
    }
    return response;
  }

  async json<T>(path: string, opts: RequestOptions = {}): Promise<T> {
    const response = await this.request(path, opts);
    return (await response.json()) as T;
  }
}

/** One path segment, percent-encoded, so that an id can never change the shape of a URL. */
export function segment(value: string): string {
  if (value === '' || value === '.' || value === '..') throw new UsageError(`not a valid id: ${JSON.stringify(value)}`);
  return encodeURIComponent(value);
}
