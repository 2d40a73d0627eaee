import { type CallOptions, NotFoundError, type QueryValue } from '@vmplane/common';
import { withEtag } from '../etag.js';
import { LxdOperation } from '../operation.js';
import type { LxdRequest, LxdTransport, Method } from '../transport.js';
import type { Operation } from '../types/api.js';

/** Options every LXD call takes: `{ signal, timeout }` and the project it applies to. */
export interface LxdCallOptions extends CallOptions {
  /** Project for this call, overriding the client's. */
  project?: string | undefined;
}

/** Options of updates: the ETag read with the object, sent as If-Match. */
export interface UpdateOptions extends LxdCallOptions {
  etag?: string | undefined;
}

/** Options of list calls that LXD can filter server-side. */
export interface ListOptions extends LxdCallOptions {
  /** LXD filter expression, e.g. `status eq Running`. */
  filter?: string | undefined;
  /** Across every project. */
  allProjects?: boolean | undefined;
}

/** What resource modules share: they only say method, path and types. */
export abstract class Resource {
  constructor(protected readonly transport: LxdTransport) {}

  protected call<T>(method: Method, path: string, opts: LxdCallOptions & Partial<LxdRequest> = {}): Promise<T> {
    return this.transport.request<T>(this.req(method, path, opts)).then((r) => r.metadata);
  }

  /** A GET whose answer remembers its ETag (see etagOf). */
  protected async read<T extends object>(
    path: string,
    opts: LxdCallOptions & { query?: Record<string, QueryValue> } = {},
  ): Promise<T> {
    const r = await this.transport.request<T>(this.req('GET', path, opts));
    return withEtag(r.metadata, r.etag);
  }

  /** A request answered with an operation. */
  protected async operation(
    method: Method,
    path: string,
    opts: LxdCallOptions & Partial<LxdRequest> = {},
  ): Promise<LxdOperation> {
    const r = await this.transport.request<Operation>(this.req(method, path, opts));
    return new LxdOperation(this.transport, r.metadata, opts.project ?? this.transport.project);
  }

  /** A request answered with an operation, waited for. */
  protected async operationDone(
    method: Method,
    path: string,
    opts: LxdCallOptions & Partial<LxdRequest> = {},
  ): Promise<Operation> {
    const op = await this.operation(method, path, opts);
    return op.wait({ signal: opts.signal });
  }

  /** Some calls answer sync on one storage driver and async on another; both come back as an optional operation. */
  protected async maybeOperation(
    method: Method,
    path: string,
    opts: LxdCallOptions & Partial<LxdRequest> = {},
  ): Promise<LxdOperation | undefined> {
    const r = await this.transport.request<Operation>(this.req(method, path, opts));
    return r.type === 'async'
      ? new LxdOperation(this.transport, r.metadata, opts.project ?? this.transport.project)
      : undefined;
  }

  protected req(method: Method, path: string, opts: LxdCallOptions & Partial<LxdRequest>): LxdRequest {
    const { project, ...rest } = opts;
    const req: LxdRequest = { ...rest, method, path };
    if (project !== undefined) req.project = project;
    return req;
  }
}

/** Whether a read finds its object: false on 404, the error otherwise. */
export async function found(read: Promise<unknown>): Promise<boolean> {
  try {
    await read;
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/** Turns `/1.0/instances/foo` URLs (what recursion=0 returns) into names. */
export function namesFromUrls(urls: readonly string[]): string[] {
  return urls.map((u) => {
    const clean = u.split('?')[0] ?? u;
    return decodeURIComponent(clean.slice(clean.lastIndexOf('/') + 1));
  });
}

export function listQuery(opts: ListOptions, recursion: number): Record<string, QueryValue> {
  return {
    recursion: recursion || undefined,
    filter: opts.filter,
    'all-projects': opts.allProjects ? 'true' : undefined,
  };
}
