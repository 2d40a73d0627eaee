import type * as http from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  apiErrorFromStatus,
  type CallOptions,
  checkCallOptions,
  createAgent,
  deadline,
  exchange,
  type HttpResponse,
  InvalidArgumentError,
  longTimer,
  NotFoundError,
  parseRetryAfter,
  type RetryPolicy,
  retry,
  retryDecision,
  ServerError,
  TimeoutError,
  withDeadline,
} from '@vmplane/common';
import { ChecksumMismatchError } from './images/errors.js';
import {
  applyAliases,
  type DownloadableFile,
  localArchitecture,
  type Products,
  productsToImages,
  type StreamAlias,
  type StreamImage,
  type StreamIndex,
} from './images/streams.js';
import { type ProgressCallback, progressOf, sha256, VerifyingStream } from './images/transfer.js';
import type { Pem } from './transport.js';
import type { Image, ImageAliasesEntry } from './types/api.js';

/** Errors from a SimpleStreams server carry this backend name (it is not an LXD daemon). */
export const SIMPLESTREAMS_BACKEND = 'simplestreams';

export interface SimpleStreamsOptions {
  /** Default timeout in ms for reading the index and products files. Default 30 s. Downloads have none unless given. */
  timeout?: number | undefined;
  /** Retries of index/products reads on connection failures and 5xx. Default 3 attempts. */
  retry?: RetryPolicy | undefined;
  /** The server's own certificate (PEM), trusted alone: for self-signed servers. */
  serverCert?: Pem | undefined;
  /** A CA to trust besides the system's. */
  ca?: Pem | undefined;
  /** Which architecture gets the short aliases (LXD gives `alias` only to native images). Default: this machine's. */
  architecture?: string | undefined;
  userAgent?: string | undefined;
}

/** `{ type }` narrows an alias to containers or VMs when a server has both under one name. */
export interface AliasLookup extends CallOptions {
  type?: 'container' | 'virtual-machine' | undefined;
}

export interface DownloadOptions extends CallOptions {
  /** Bytes received so far over both files, against their total. */
  onProgress?: ProgressCallback | undefined;
}

/** A downloaded, verified image: metadata (the unified tarball for unified images) and rootfs. */
export interface DownloadedImage {
  image: Image;
  metadata: Buffer;
  rootfs: Buffer | undefined;
}

interface Catalogue {
  images: StreamImage[];
  aliases: StreamAlias[];
}

/**
 * A read-only client for a SimpleStreams image server (images.linuxcontainers.org,
 * cloud-images.ubuntu.com/releases, or your own), reading it the way LXD does. The index and
 * products are read once and kept until `refresh()`.
 *
 *   const ss = LxdClient.connectSimpleStreams('https://images.example.org');
 *   const image = await ss.getAlias('alpine/3.19');
 */
export class SimpleStreamsClient {
  readonly url: string;
  readonly #base: string;
  readonly #agent: http.Agent;
  readonly #timeout: number;
  readonly #retry: RetryPolicy & { attempts: number };
  readonly #architecture: string;
  readonly #userAgent: string;
  #catalogue: Promise<Catalogue> | undefined;
  readonly #json = new Map<string, Promise<unknown>>();

  constructor(url: string, opts: SimpleStreamsOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new InvalidArgumentError({ message: `Invalid URL ${JSON.stringify(url)}`, argument: 'url', cause: error });
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new InvalidArgumentError({ message: 'A SimpleStreams URL is http(s)://', argument: 'url' });
    }
    checkCallOptions({ timeout: opts.timeout }, SIMPLESTREAMS_BACKEND);
    this.url = url;
    this.#base = parsed.href.replace(/\/+$/, '');
    this.#timeout = opts.timeout ?? 30_000;
    this.#retry = { attempts: 3, initial: 200, max: 2_000, ...opts.retry };
    this.#architecture = opts.architecture ?? localArchitecture();
    this.#userAgent = opts.userAgent ?? 'vmplane-lxd/0.1';
    // The same trust policy as every vmplane client: a pinned serverCert is that certificate
    // alone, checked before any request byte is sent.
    this.#agent = createAgent(
      parsed,
      { serverCert: opts.serverCert, ca: opts.ca },
      { keepAlive: true, backend: SIMPLESTREAMS_BACKEND },
    );
  }

  /** Forgets the index and products read so far; the next call reads them again. */
  refresh(): void {
    this.#catalogue = undefined;
    this.#json.clear();
  }

  /** Closes idle connections. */
  close(): void {
    this.#agent.destroy();
  }

  /** `streams/v1/index.json`. */
  async index(opts: CallOptions = {}): Promise<StreamIndex> {
    return this.#readJson<StreamIndex>('streams/v1/index.json', opts);
  }

  /** A products file named by the index. */
  async products(path: string, opts: CallOptions = {}): Promise<Products> {
    return this.#readJson<Products>(path, opts);
  }

  /** Images with where their files are, sorted as LXD sorts them (newest serial first per product). */
  async streamImages(opts: CallOptions = {}): Promise<StreamImage[]> {
    return (await this.#load(opts)).images;
  }

  /** Every image, LXD-shaped (what `lxc image list <remote>:` shows). */
  async images(opts: CallOptions = {}): Promise<Image[]> {
    return (await this.#load(opts)).images.map((i) => i.image);
  }

  /** Every alias once per name and type, native architecture first. */
  async aliases(opts: CallOptions = {}): Promise<ImageAliasesEntry[]> {
    const out: ImageAliasesEntry[] = [];
    for (const a of (await this.#load(opts)).aliases) {
      if (out.some((o) => o.name === a.name && o.type === a.type)) continue;
      out.push({ name: a.name, target: a.target, type: a.type, description: a.description });
    }
    return out;
  }

  /**
   * Resolves an alias (`alpine/3.19` for this machine's architecture, or `alpine/3.19/arm64`) to
   * the newest image it names. NotFoundError when absent; InvalidArgumentError when it names both
   * a container and a VM image and no `type` was given.
   */
  async getAlias(name: string, opts: AliasLookup = {}): Promise<StreamAlias> {
    const { aliases } = await this.#load(opts);
    let match: StreamAlias | undefined;
    for (const a of aliases) {
      if (a.name !== name || (opts.type && a.type !== opts.type)) continue;
      if (!match) match = a;
      else if (match.type !== a.type) {
        throw new InvalidArgumentError({
          message: `Alias ${JSON.stringify(name)} names both a container and a VM image; pass type`,
          argument: 'type',
        });
      }
    }
    if (!match) throw notFound(`Alias ${JSON.stringify(name)} not found on ${this.url}`);
    return match;
  }

  /** What an alias points to on each architecture that has it. */
  async aliasArchitectures(name: string, opts: AliasLookup = {}): Promise<Record<string, StreamAlias>> {
    const out: Record<string, StreamAlias> = {};
    for (const a of (await this.#load(opts)).aliases) {
      if (a.name === name && (!opts.type || a.type === opts.type)) out[a.architecture] ??= a;
    }
    if (Object.keys(out).length === 0) throw notFound(`Alias ${JSON.stringify(name)} not found on ${this.url}`);
    return out;
  }

  /** An image by fingerprint or unique fingerprint prefix. */
  async getImage(fingerprint: string, opts: CallOptions = {}): Promise<Image> {
    return (await this.#find(fingerprint, opts)).image;
  }

  /** An alias or a fingerprint (prefix) to the image and its files. */
  async resolve(ref: string, opts: AliasLookup = {}): Promise<StreamImage> {
    try {
      const alias = await this.getAlias(ref, opts);
      return await this.#find(alias.target, opts);
    } catch (error) {
      if (!(error instanceof NotFoundError) || !/^[0-9a-f]+$/i.test(ref)) throw error;
      return this.#find(ref, opts);
    }
  }

  /** Downloads an image's files into memory, checking each file's sha256 and the combined fingerprint. */
  async download(ref: string | StreamImage, opts: DownloadOptions = {}): Promise<DownloadedImage> {
    if (typeof ref !== 'string' && (typeof ref !== 'object' || ref === null || !ref.files?.meta)) {
      throw new InvalidArgumentError({
        message: 'download takes an alias, a fingerprint or a StreamImage',
        argument: 'ref',
        backend: SIMPLESTREAMS_BACKEND,
      });
    }
    return withDeadline({ signal: opts.signal, timeout: opts.timeout }, SIMPLESTREAMS_BACKEND, async (d) => {
      const entry = typeof ref === 'string' ? await this.resolve(ref, { signal: d.signal }) : ref;
      const { meta, root } = entry.files;
      const total = meta.size + (root?.size ?? 0);
      const combined = sha256();
      const fetch = async (file: DownloadableFile, offset: number): Promise<Buffer> => {
        const chunks: Buffer[] = [];
        const stream = await this.openFile(file, {
          signal: d.signal,
          ...(opts.timeout === undefined ? {} : { timeout: Number.POSITIVE_INFINITY }),
          onProgress: opts.onProgress && ((p) => opts.onProgress?.(progressOf(offset + p.bytes, total))),
        });
        await pipeline(stream, async (source: AsyncIterable<Buffer>) => {
          for await (const c of source) chunks.push(c);
        });
        const data = Buffer.concat(chunks);
        combined.update(data);
        return data;
      };
      const metadata = await fetch(meta, 0);
      const rootfs = root ? await fetch(root, meta.size) : undefined;
      const actual = combined.digest('hex');
      if (actual !== entry.image.fingerprint) {
        throw new ChecksumMismatchError({
          message: `image ${entry.image.fingerprint}: the files hash to ${actual}`,
          subject: 'image',
          expected: entry.image.fingerprint,
          actual,
          backend: SIMPLESTREAMS_BACKEND,
        });
      }
      return { image: entry.image, metadata, rootfs };
    });
  }

  /**
   * One file as a stream that fails with ChecksumMismatchError at its end if its sha256 is not the
   * one the products file gives. Destroying the stream closes the connection. The client's
   * timeout lasts until the answer begins; the caller's `timeout`, if any, covers the whole read.
   */
  async openFile(file: DownloadableFile, opts: DownloadOptions = {}): Promise<Readable> {
    const res = await this.#get(file.path, { signal: opts.signal, timeout: opts.timeout }, false);
    const length = Number(res.headers['content-length']);
    const verify = new VerifyingStream({
      total: Number.isFinite(length) ? length : file.size || undefined,
      onProgress: opts.onProgress,
      hash: file.sha256 ? sha256() : undefined,
      expected: file.sha256 || undefined,
      subject: file.path,
      backend: SIMPLESTREAMS_BACKEND,
    });
    res.stream.on('error', (e) => verify.destroy(e));
    verify.on('close', () => res.stream.destroy());
    return res.stream.pipe(verify);
  }

  async #find(fingerprint: string, opts: CallOptions): Promise<StreamImage> {
    const matches = (await this.#load(opts)).images.filter((i) => i.image.fingerprint.startsWith(fingerprint));
    if (matches.length === 0) throw notFound(`Image ${fingerprint} not found on ${this.url}`);
    if (matches.length > 1) {
      throw new InvalidArgumentError({
        message: `Fingerprint prefix ${fingerprint} matches ${matches.length} images`,
        argument: 'fingerprint',
      });
    }
    return matches[0] as StreamImage;
  }

  #load(opts: CallOptions): Promise<Catalogue> {
    if (!this.#catalogue) {
      const loading = (async () => {
        // Not the caller's signal: a shared read must not be cut short by one caller's abort.
        const index = await this.index({ timeout: this.#timeout });
        const images: StreamImage[] = [];
        for (const entry of Object.values(index.index ?? {})) {
          if (entry.datatype !== 'image-downloads' || !entry.products?.length) continue;
          const products = await this.products(entry.path, { timeout: this.#timeout });
          images.push(...productsToImages(products, { server: this.url }));
        }
        return applyAliases(images, this.#architecture);
      })();
      this.#catalogue = loading;
      loading.catch(() => {
        if (this.#catalogue === loading) this.#catalogue = undefined;
      });
    }
    const pending = this.#catalogue;
    return withDeadline(opts, SIMPLESTREAMS_BACKEND, (d) =>
      Promise.race([
        pending,
        new Promise<never>((_, reject) => d.signal.addEventListener('abort', () => reject(d.reason()), { once: true })),
      ]),
    );
  }

  #readJson<T>(path: string, opts: CallOptions): Promise<T> {
    let cached = this.#json.get(path) as Promise<T> | undefined;
    if (!cached) {
      cached = (async () => {
        const res = await this.#get(path, { timeout: opts.timeout ?? this.#timeout }, true);
        const text = await res.text();
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new ServerError({
            status: res.status,
            message: `${path} is not JSON: ${text.slice(0, 80)}`,
            backend: SIMPLESTREAMS_BACKEND,
          });
        }
      })();
      this.#json.set(path, cached);
      cached.catch(() => this.#json.delete(path));
    }
    const pending = cached;
    return withDeadline({ signal: opts.signal }, SIMPLESTREAMS_BACKEND, (d) =>
      Promise.race([
        pending,
        new Promise<never>((_, reject) => d.signal.addEventListener('abort', () => reject(d.reason()), { once: true })),
      ]),
    );
  }

  /**
   * A GET of a path under the server's URL, retried as every vmplane read is (lost connections,
   * 429/502/503/504, after the server's Retry-After); any other non-200 is a typed error. The
   * default timeout bounds a JSON read whole, and a file download only until its answer begins.
   */
  async #get(path: string, opts: CallOptions, buffered: boolean): Promise<HttpResponse> {
    const url = this.#resolveUrl(path);
    const callerTimeout = opts.timeout;
    const d = deadline(
      { signal: opts.signal, timeout: buffered ? (callerTimeout ?? this.#timeout) : callerTimeout },
      SIMPLESTREAMS_BACKEND,
    );
    const headers = new AbortController();
    // A download's answer must begin within the default timeout; reading it is the caller's business.
    const headerTimer =
      !buffered && callerTimeout === undefined && Number.isFinite(this.#timeout)
        ? longTimer(this.#timeout, () =>
            headers.abort(
              new TimeoutError({
                message: `Timed out after ${this.#timeout} ms`,
                backend: SIMPLESTREAMS_BACKEND,
                timeout: this.#timeout,
              }),
            ),
          )
        : undefined;
    const signal = AbortSignal.any([d.signal, headers.signal]);
    const reason = () => d.reason() ?? (headers.signal.aborted ? (headers.signal.reason as TimeoutError) : undefined);
    let keep = false;
    try {
      const res = await retry(
        async () => {
          const res = await exchange({
            method: 'GET',
            url,
            headers: { 'User-Agent': this.#userAgent },
            agent: this.#agent,
            signal,
            backend: SIMPLESTREAMS_BACKEND,
          });
          if (res.status === 200) return res;
          const body = (await res.text().catch(() => '')).slice(0, 200);
          throw apiErrorFromStatus({
            status: res.status,
            message: `GET ${url.pathname}: HTTP ${res.status}`,
            body,
            backend: SIMPLESTREAMS_BACKEND,
            method: 'GET',
            path: url.pathname,
            retryAfter: parseRetryAfter(res.headers['retry-after']),
          });
        },
        {
          ...this.#retry,
          signal,
          decide: (error) => retryDecision(error, { idempotent: true }),
        },
      );
      headerTimer?.clear();
      if (buffered) {
        await res.buffer();
        return res;
      }
      // A stream outlives this call: its deadline ends when the stream closes.
      keep = true;
      res.stream.once('close', () => d.dispose());
      return res;
    } catch (error) {
      throw reason() ?? error;
    } finally {
      headerTimer?.clear();
      if (!keep) d.dispose();
    }
  }

  #resolveUrl(path: string): URL {
    // Paths come from the server's own files: keep them under its URL.
    if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('/') || path.split('/').includes('..')) {
      throw new ServerError({
        status: 502,
        message: `The server named a file outside itself: ${JSON.stringify(path)}`,
        backend: SIMPLESTREAMS_BACKEND,
      });
    }
    return new URL(`${this.#base}/${path}`);
  }
}

function notFound(message: string): NotFoundError {
  return new NotFoundError({ status: 404, message, backend: SIMPLESTREAMS_BACKEND });
}
