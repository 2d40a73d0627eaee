import type { Readable } from 'node:stream';
import {
  type CallOptions,
  callOptions,
  checkCallOptions,
  InvalidArgumentError,
  NotFoundError,
  type QueryValue,
  ServerError,
  withDeadline,
} from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { withEtag } from '../etag.js';
import { LxdOperation } from '../operation.js';
import { checkBody } from '../request-checks.js';
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

/**
 * What a resource puts into a request besides the caller's `{ signal, timeout, project }`. Never
 * taken from a caller's options bag: a caller's options cannot add headers or bodies.
 */
export interface RequestParts {
  query?: Readonly<Record<string, QueryValue>> | undefined;
  body?: unknown;
  rawBody?: LxdRequest['rawBody'];
  headers?: Readonly<Record<string, string>> | undefined;
  etag?: string | undefined;
  onUploadProgress?: ((sent: number) => void) | undefined;
  /** Overrides the caller's project: `null` sends none (every project, or objects outside projects). */
  project?: string | null | undefined;
}

const PARTS = ['query', 'body', 'rawBody', 'headers', 'etag', 'onUploadProgress', 'project'] as const;

/** What resource modules share: they only say method, path and types. */
export abstract class Resource {
  constructor(protected readonly transport: LxdTransport) {}

  /**
   * A request answered with metadata. `opts` is the caller's bag: only signal, timeout and project
   * are read from it, so no other field a caller puts there reaches the request. `parts` is what
   * the resource adds.
   */
  protected async call<T>(method: Method, path: string, opts: LxdCallOptions, parts: RequestParts): Promise<T> {
    return (await this.transport.request<T>(this.req(method, path, opts, parts))).metadata;
  }

  /** A GET whose answer remembers its ETag (see etagOf). */
  protected async read<T extends object>(path: string, opts: LxdCallOptions, parts: RequestParts): Promise<T> {
    const r = await this.transport.request<T>(this.req('GET', path, opts, parts));
    return withEtag(r.metadata, r.etag);
  }

  /** A request answered with an operation. */
  protected async operation(
    method: Method,
    path: string,
    opts: LxdCallOptions,
    parts: RequestParts,
  ): Promise<LxdOperation> {
    return (await this.operationAndAnswer(method, path, opts, parts)).operation;
  }

  /**
   * Like operation, with the answer itself: the operation's `initial` leaves its secrets out, so
   * a resource that hands one to its caller (an image secret) reads it here.
   */
  protected async operationAndAnswer(
    method: Method,
    path: string,
    opts: LxdCallOptions,
    parts: RequestParts,
  ): Promise<{ operation: LxdOperation; answer: Operation }> {
    const req = this.req(method, path, opts, parts);
    const r = await this.transport.request<Operation>(req);
    const answer = operationOf(r.metadata, method, path);
    return { operation: new LxdOperation(this.transport, answer, this.projectOf(req)), answer };
  }

  /** A request answered with an operation, waited for under the same deadline. */
  protected async operationDone(
    method: Method,
    path: string,
    opts: LxdCallOptions,
    parts: RequestParts,
  ): Promise<Operation> {
    return withDeadline(callOptions(opts), BACKEND, async (d) => {
      const op = await this.operation(method, path, { project: opts?.project, signal: d.signal }, parts);
      return op.wait({ signal: d.signal });
    });
  }

  /** Some calls answer sync on one storage driver and async on another; both come back as an optional operation. */
  protected async maybeOperation(
    method: Method,
    path: string,
    opts: LxdCallOptions,
    parts: RequestParts,
  ): Promise<LxdOperation | undefined> {
    const req = this.req(method, path, opts, parts);
    const r = await this.transport.request<Operation>(req);
    return r.type === 'async'
      ? new LxdOperation(this.transport, operationOf(r.metadata, method, path), this.projectOf(req))
      : undefined;
  }

  /** Like maybeOperation, and waits for the operation if there is one, under the same deadline. */
  protected async maybeOperationDone(
    method: Method,
    path: string,
    opts: LxdCallOptions,
    parts: RequestParts,
  ): Promise<void> {
    await withDeadline(callOptions(opts), BACKEND, async (d) => {
      const op = await this.maybeOperation(method, path, { project: opts?.project, signal: d.signal }, parts);
      await op?.wait({ signal: d.signal });
    });
  }

  /** The request: the caller's signal, timeout and project, and the resource's parts, picked one by one. */
  protected req(method: Method, path: string, opts: LxdCallOptions, parts: RequestParts): LxdRequest {
    checkCallOptions(opts, BACKEND);
    const req: LxdRequest = { method, path, ...callOptions(opts) };
    if (opts?.project !== undefined) req.project = opts.project;
    for (const key of PARTS)
      if (parts[key] !== undefined) (req as unknown as Record<string, unknown>)[key] = parts[key];
    return req;
  }

  /** The project an operation of this request belongs to, for its waits. */
  private projectOf(req: LxdRequest): string | undefined {
    return req.project === null ? undefined : (req.project ?? this.transport.project);
  }
}

/** The operation an answer describes; an answer that names none is the daemon's error. */
function operationOf(metadata: unknown, method: string, path: string): Operation {
  const id = (metadata as { id?: unknown } | null)?.id;
  if (typeof id !== 'string' || id === '') {
    throw new ServerError({
      status: 502,
      message: `${method} ${path}: LXD answered no operation`,
      backend: BACKEND,
      body: metadata,
    });
  }
  return metadata as Operation;
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

export function listQuery(opts: ListOptions, recursion: number): Record<string, QueryValue> {
  if (opts?.filter !== undefined && typeof opts.filter !== 'string') {
    throw new InvalidArgumentError({ message: 'filter must be a string', argument: 'filter', backend: BACKEND });
  }
  return {
    recursion: recursion || undefined,
    filter: opts?.filter,
    'all-projects': opts?.allProjects ? 'true' : undefined,
  };
}

/**
 * The parts of a list call. Across every project (`allProjects`) no project is sent at all:
 * LXD refuses `all-projects` together with `project`, the client's default included.
 */
export function listParts(
  opts: ListOptions,
  recursion: number,
  extra: Readonly<Record<string, QueryValue>> = {},
): RequestParts {
  const parts: RequestParts = { query: { ...listQuery(opts, recursion), ...extra } };
  if (opts?.allProjects) {
    if (opts.project !== undefined) {
      throw new InvalidArgumentError({
        message: 'Give either allProjects or project, not both',
        argument: 'project',
        backend: BACKEND,
      });
    }
    parts.project = null;
  }
  return parts;
}

/**
 * Content to send as a raw body: bytes (Buffer, Uint8Array, ArrayBuffer), a stream, or with
 * `text`, a string. Anything else is refused before a request exists.
 */
export function checkContent(
  value: unknown,
  argument: string,
  opts: { text: boolean },
): Buffer | Uint8Array | ArrayBuffer | string | Readable {
  if (typeof value === 'string' && !opts.text) {
    throw new InvalidArgumentError({
      message: `${argument} must be bytes (Buffer, Uint8Array, ArrayBuffer) or a stream, not a string`,
      argument,
      backend: BACKEND,
    });
  }
  return checkBody(value, argument) as Buffer | Uint8Array | ArrayBuffer | string | Readable;
}
