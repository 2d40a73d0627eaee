import type { Readable } from 'node:stream';
import { type Deadline, InvalidArgumentError, path, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { type AliasCreate, checkAliasName, ImageAliases } from '../images/aliases.js';
import { ChecksumMismatchError } from '../images/errors.js';
import { boundaryOf, type FormFile, multipartBody, multipartParts } from '../images/multipart.js';
import {
  byteStream,
  type ImageData,
  type OpenedData,
  openData,
  type ProgressCallback,
  progressOf,
  sha256,
  VerifyingStream,
} from '../images/transfer.js';
import { checkFingerprint } from '../images/validate.js';
import { checkInstanceName, checkObjectName } from '../names.js';
import type { LxdOperation, OperationProgress } from '../operation.js';
import type { LxdTransport } from '../transport.js';
import type { Image, ImageAlias, ImagePut, ImagesPost, ImagesPostSource, Operation } from '../types/api.js';
import {
  found,
  type ListOptions,
  type LxdCallOptions,
  listQuery,
  namesFromUrls,
  Resource,
  type UpdateOptions,
} from './base.js';

export interface ImageListOptions extends ListOptions {
  /** Only public images (true) or only private ones (false); combined with `filter`. */
  public?: boolean | undefined;
}

/** What every upload may set on the new image. */
export interface ImageUploadCommon {
  /** Original file name, kept by LXD (unified uploads). */
  filename?: string | undefined;
  public?: boolean | undefined;
  /** Added to (and overriding) the properties in the image's metadata.yaml. */
  properties?: Readonly<Record<string, string>> | undefined;
  /** Profiles instances created from this image get when they name none. */
  profiles?: readonly string[] | undefined;
  /** Aliases created once the image exists (an existing alias is moved to it). */
  aliases?: readonly (string | ImageAlias)[] | undefined;
  /**
   * The fingerprint you expect. Sent as X-LXD-fingerprint so LXD refuses other bytes. When the
   * data is in memory it is computed and sent anyway.
   */
  fingerprint?: string | undefined;
}

/** A unified image: one tarball with metadata.yaml, templates/ and rootfs/. */
export interface UnifiedImageUpload extends ImageUploadCommon {
  tarball: ImageData;
}

/** A split image: a metadata tarball and a rootfs (squashfs or tarball; a disk image for VMs). */
export interface SplitImageUpload extends ImageUploadCommon {
  metadata: ImageData;
  rootfs: ImageData;
  /** `virtual-machine` sends the rootfs as `rootfs.img`. Default `container`. */
  type?: 'container' | 'virtual-machine' | undefined;
  /** File names given in the multipart parts. */
  metadataFilename?: string | undefined;
  rootfsFilename?: string | undefined;
}

export type ImageUpload = UnifiedImageUpload | SplitImageUpload;

export interface TransferOptions extends LxdCallOptions {
  /** Bytes sent (uploads) or received (exports) so far. */
  onProgress?: ProgressCallback | undefined;
}

/** An image now on the server. */
export interface ImageResult {
  fingerprint: string;
  size: number;
  /** Aliases that were set on it. */
  aliases: string[];
}

export interface ExportOptions extends TransferOptions {
  /** A secret from `createSecret` (to export a private image as an untrusted client). */
  secret?: string | undefined;
}

/**
 * An export being read. The rootfs (or unified tarball) arrives as a stream that fails with
 * ChecksumMismatchError at its end if the bytes do not hash to the fingerprint; destroy it to stop.
 */
export type ImageExport =
  | { format: 'unified'; fingerprint: string; filename: string | undefined; data: Readable }
  | {
      format: 'split';
      fingerprint: string;
      metadata: { filename: string | undefined; data: Buffer };
      rootfs: { filename: string | undefined; data: Readable };
    };

/** An export read into memory and verified. For unified images, `metadata` is the whole tarball. */
export interface ExportedImage {
  format: 'unified' | 'split';
  fingerprint: string;
  metadata: Buffer;
  rootfs: Buffer | undefined;
}

/** Where to copy an image from: another LXD server or a SimpleStreams server. */
export interface ImageCopySource {
  /** `https://host:8443` (LXD) or a SimpleStreams URL (`http(s)://...`). */
  server: string;
  protocol?: 'lxd' | 'simplestreams' | undefined;
  alias?: string | undefined;
  fingerprint?: string | undefined;
  /** PEM of the server's certificate when it is not signed by a CA the daemon trusts. */
  certificate?: string | undefined;
  /** A secret from the other LXD server, for a private image. */
  secret?: string | undefined;
  /** `container` or `virtual-machine`, when an alias names both. */
  type?: 'container' | 'virtual-machine' | undefined;
  /** Project on the source LXD server. */
  project?: string | undefined;
}

export interface ImageCopyOptions extends LxdCallOptions {
  /** Aliases to point at the copy once it is here (as `lxc image copy --alias`). */
  aliases?: readonly (string | ImageAlias)[] | undefined;
  public?: boolean | undefined;
  /** Keep the image refreshed from its source (`lxc image copy --auto-update`). */
  autoUpdate?: boolean | undefined;
  profiles?: readonly string[] | undefined;
  /** LXD's download progress, from the operation's events. */
  onProgress?: ((progress: OperationProgress) => void) | undefined;
}

/** What to make an image of: an instance (stopped) or one of its snapshots. */
export interface ImagePublishSource {
  instance: string;
  snapshot?: string | undefined;
}

export interface ImagePublishOptions extends LxdCallOptions {
  /** Aliases to point at the new image (as `lxc publish --alias`). */
  aliases?: readonly (string | ImageAlias)[] | undefined;
  public?: boolean | undefined;
  /** Descriptive properties, e.g. `{ os: 'busybox', release: '1.35' }`. */
  properties?: Readonly<Record<string, string>> | undefined;
  /** `gzip` (LXD's default), `none`, `xz`, `zstd`, ... */
  compressionAlgorithm?: string | undefined;
  expiresAt?: Date | undefined;
  profiles?: readonly string[] | undefined;
  /** LXD's progress (packing, compressing), from the operation's events. */
  onProgress?: ((progress: OperationProgress) => void) | undefined;
}

export interface ImageSecret {
  secret: string;
  /** The operation holding the secret; `cancel()` revokes it. */
  operation: LxdOperation;
}

/** Images: list, get, upload (unified and split), export, update, delete, refresh, secrets, copies and aliases. */
export class Images extends Resource {
  readonly aliases: ImageAliases;

  constructor(transport: LxdTransport) {
    super(transport);
    this.aliases = new ImageAliases(transport);
  }

  private item(fingerprint: string): string {
    return path`/1.0/images/${checkFingerprint(fingerprint)}`;
  }

  private listQuery(opts: ImageListOptions, recursion: number) {
    const q = listQuery(opts, recursion);
    if (opts.public !== undefined) {
      const only = `public eq ${opts.public}`;
      q.filter = opts.filter ? `(${opts.filter}) and ${only}` : only;
    }
    return q;
  }

  private scope(opts: ListOptions): LxdCallOptions {
    const { allProjects: _all, filter: _filter, ...rest } = opts as ImageListOptions;
    delete (rest as ImageListOptions).public;
    return opts.allProjects ? { ...rest, project: undefined } : rest;
  }

  /** Fingerprints of every image (recursion=0). */
  async fingerprints(opts: ImageListOptions = {}): Promise<string[]> {
    return namesFromUrls(
      await this.call<string[]>('GET', '/1.0/images', { ...this.scope(opts), query: this.listQuery(opts, 0) }),
    );
  }

  /** Same as `fingerprints`: image "names" are their fingerprints. */
  names(opts: ImageListOptions = {}): Promise<string[]> {
    return this.fingerprints(opts);
  }

  list(opts: ImageListOptions = {}): Promise<Image[]> {
    return this.call('GET', '/1.0/images', { ...this.scope(opts), query: this.listQuery(opts, 1) });
  }

  /** One image by fingerprint or unique prefix; `etagOf(result)` gives its ETag. */
  async get(fingerprint: string, opts: LxdCallOptions & { secret?: string } = {}): Promise<Image> {
    const { secret, ...rest } = opts;
    return this.read<Image>(this.item(fingerprint), secret ? { ...rest, query: { secret } } : rest);
  }

  /** The image an alias points to. */
  async getByAlias(alias: string, opts: LxdCallOptions = {}): Promise<Image> {
    const entry = await this.aliases.get(alias, opts);
    return this.get(entry.target, opts);
  }

  exists(fingerprint: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return found(this.get(fingerprint, opts));
  }

  /** Replaces the writable fields; with `etag` (from `etagOf`), fails with 412 if the image changed. */
  async update(fingerprint: string, put: ImagePut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PUT', this.item(fingerprint), { ...opts, body: put });
  }

  async patch(fingerprint: string, put: ImagePut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PATCH', this.item(fingerprint), { ...opts, body: put });
  }

  /** Deletes the image and waits until it is gone. */
  async delete(fingerprint: string, opts: LxdCallOptions = {}): Promise<void> {
    await withDeadline(opts, BACKEND, async (d) => {
      const op = await this.operation('DELETE', this.item(fingerprint), {
        ...opts,
        signal: d.signal,
        timeout: undefined,
      });
      await op.wait({ signal: d.signal });
    });
  }

  /**
   * Asks LXD to refresh the image from its source (images copied with auto-update). Resolves true
   * when a newer image replaced it; a local image without a source fails with OperationFailedError.
   */
  async refresh(fingerprint: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return withDeadline(opts, BACKEND, async (d) => {
      const op = await this.operation('POST', `${this.item(fingerprint)}/refresh`, {
        ...opts,
        signal: d.signal,
        timeout: undefined,
      });
      const done = await op.wait({ signal: d.signal });
      return Boolean((done.metadata as { refreshed?: unknown } | null)?.refreshed);
    });
  }

  /** A one-time secret another party can use to fetch this (private) image. */
  async createSecret(fingerprint: string, opts: LxdCallOptions = {}): Promise<ImageSecret> {
    const operation = await this.operation('POST', `${this.item(fingerprint)}/secret`, opts);
    const secret = (operation.initial.metadata as { secret?: unknown } | null)?.secret;
    if (typeof secret !== 'string') {
      throw new InvalidArgumentError({ message: 'LXD answered no secret', argument: 'fingerprint', backend: BACKEND });
    }
    return { secret, operation };
  }

  /**
   * Uploads a unified tarball or a split image (multipart: metadata, then rootfs), streamed, with
   * progress. The fingerprint is computed as the bytes go out (sha256 of the tarball, or of
   * metadata||rootfs) and must equal the one LXD reports, else ChecksumMismatchError (and the
   * image is removed). An abort or timeout mid-upload leaves no image behind.
   */
  upload(image: ImageUpload, opts: TransferOptions = {}): Promise<ImageResult> {
    return withDeadline({ signal: opts.signal, timeout: opts.timeout }, BACKEND, async (d) => {
      const split = !('tarball' in image);
      if (image.fingerprint !== undefined) checkFingerprint(image.fingerprint, 'fingerprint');
      for (const a of image.aliases ?? []) checkAliasName(typeof a === 'string' ? a : a.name, 'aliases');
      const parts: OpenedData[] = split
        ? [await openData(image.metadata, 'metadata'), await openData(image.rootfs, 'rootfs')]
        : [await openData(image.tarball, 'tarball')];
      const hash = sha256();
      let expected = image.fingerprint?.toLowerCase();
      if (!expected && parts.every((p) => p.buffer)) {
        const h = sha256();
        for (const p of parts) h.update(p.buffer as Buffer);
        expected = h.digest('hex');
      }
      const headers: Record<string, string> = {};
      let chunks: AsyncIterable<Buffer>;
      let length: number | undefined;
      if (split) {
        const vm = image.type === 'virtual-machine';
        const files: FormFile[] = [
          { name: 'metadata', filename: image.metadataFilename ?? 'metadata.tar', data: parts[0] as OpenedData },
          {
            name: vm ? 'rootfs.img' : 'rootfs',
            filename: image.rootfsFilename ?? (vm ? 'rootfs.img' : 'rootfs'),
            data: parts[1] as OpenedData,
          },
        ];
        // Hash only the file bytes, not the multipart framing.
        const hashed = files.map((f) => ({ ...f, data: hashing(f.data, hash) }));
        const body = multipartBody(hashed);
        headers['Content-Type'] = body.contentType;
        chunks = body.chunks;
        length = body.length;
      } else {
        headers['Content-Type'] = 'application/octet-stream';
        chunks = hashing(parts[0] as OpenedData, hash).chunks();
        length = parts[0]?.size;
        if (image.filename) headers['X-LXD-filename'] = headerSafe(image.filename, 'filename');
      }
      if (length !== undefined) headers['Content-Length'] = String(length);
      if (expected) headers['X-LXD-fingerprint'] = expected;
      if (image.public) headers['X-LXD-public'] = 'true';
      if (image.properties && Object.keys(image.properties).length > 0) {
        headers['X-LXD-properties'] = new URLSearchParams(Object.entries(image.properties)).toString();
      }
      if (image.profiles?.length) {
        headers['X-LXD-profiles'] = new URLSearchParams(
          image.profiles.map((p): [string, string] => ['profile', p]),
        ).toString();
      }
      const body = byteStream(chunks);
      let op: LxdOperation;
      try {
        op = await this.operation('POST', '/1.0/images', {
          project: opts.project,
          signal: d.signal,
          // The whole upload is bounded by the caller's timeout, not the transport's default.
          timeout: Number.POSITIVE_INFINITY,
          rawBody: body,
          headers,
          onUploadProgress: opts.onProgress && ((sent) => opts.onProgress?.(progressOf(sent, length))),
        });
      } finally {
        // Releases the sources (open files, the caller's stream) whatever happened.
        body.destroy();
      }
      let done: Operation;
      try {
        done = await op.wait({ signal: d.signal });
      } catch (error) {
        if (d.reason()) this.removeWhenDone(op, opts.project);
        throw error;
      }
      const fingerprint = String((done.metadata as { fingerprint?: unknown } | null)?.fingerprint ?? '');
      const actual = hash.digest('hex');
      if (fingerprint !== actual) {
        if (fingerprint) await this.delete(fingerprint, { project: opts.project }).catch(() => {});
        throw new ChecksumMismatchError({
          message: `LXD fingerprinted the upload as ${fingerprint || '(none)'}, but the bytes sent hash to ${actual}`,
          subject: 'image',
          expected: actual,
          actual: fingerprint,
          backend: BACKEND,
        });
      }
      const size = Number((done.metadata as { size?: unknown } | null)?.size ?? 0);
      const aliases = await this.setAliases(fingerprint, image.aliases, { project: opts.project, signal: d.signal });
      return { fingerprint, size, aliases };
    });
  }

  /** After an abort while LXD was still processing an upload or copy: delete what it makes. */
  private removeWhenDone(op: LxdOperation, project: string | undefined): void {
    op.settled()
      .then((o) => {
        const fp = (o.metadata as { fingerprint?: unknown } | null)?.fingerprint;
        if (o.status_code === 200 && typeof fp === 'string' && fp) return this.delete(fp, { project });
        return undefined;
      })
      .catch(() => {});
  }

  private async setAliases(
    fingerprint: string,
    aliases: readonly (string | ImageAlias)[] | undefined,
    opts: LxdCallOptions,
  ): Promise<string[]> {
    const names: string[] = [];
    for (const a of aliases ?? []) {
      const alias: AliasCreate =
        typeof a === 'string'
          ? { name: a, target: fingerprint }
          : { name: a.name, target: fingerprint, description: a.description };
      await this.aliases.set(alias, opts);
      names.push(alias.name);
    }
    return names;
  }

  /**
   * Starts reading an export: a unified tarball as one stream, or a split image as its metadata
   * (in memory, it is small) and its rootfs stream. The deadline, if any, covers the whole read.
   */
  async export(fingerprint: string, opts: ExportOptions = {}): Promise<ImageExport> {
    const fp = checkFingerprint(fingerprint);
    const res = await this.transport.raw(
      this.req('GET', `${this.item(fp)}/export`, {
        project: opts.project,
        signal: opts.signal,
        timeout: opts.timeout ?? Number.POSITIVE_INFINITY,
        query: opts.secret ? { secret: opts.secret } : {},
      }),
    );
    const length = Number(res.headers['content-length']);
    const total = Number.isFinite(length) ? length : undefined;
    const hash = sha256();
    // The full fingerprint: the caller may have given a prefix.
    const full = () => (fp.length === 64 ? fp : undefined);
    const boundary = boundaryOf(res.headers['content-type']);
    if (!boundary) {
      const verify = new VerifyingStream({
        total,
        onProgress: opts.onProgress,
        hash,
        expected: full(),
        subject: 'image',
      });
      res.stream.on('error', (e) => verify.destroy(e));
      verify.on('close', () => res.stream.destroy());
      return {
        format: 'unified',
        fingerprint: fp,
        filename: dispositionFilename(res.headers['content-disposition']),
        data: res.stream.pipe(verify),
      };
    }
    let received = 0;
    const counted = (async function* () {
      for await (const chunk of res.stream as AsyncIterable<Buffer>) {
        received += chunk.length;
        opts.onProgress?.(progressOf(received, total));
        yield chunk;
      }
    })();
    const parts = multipartParts(counted, boundary);
    try {
      const first = await parts.next();
      if (first.done || first.value.name !== 'metadata') throw malformedExport('no metadata part');
      const metaChunks: Buffer[] = [];
      for await (const c of first.value.body) {
        hash.update(c);
        metaChunks.push(c);
      }
      const second = await parts.next();
      if (second.done || !['rootfs', 'rootfs.img'].includes(second.value.name ?? ''))
        throw malformedExport('no rootfs part');
      const rootPart = second.value;
      const rest = (async function* () {
        try {
          yield* rootPart.body;
          const third = await parts.next();
          if (!third.done) throw malformedExport('unexpected third part');
        } finally {
          await parts.return(undefined);
        }
      })();
      const verify = new VerifyingStream({ hash, expected: full(), subject: 'image' });
      const rootfs = byteStream(rest);
      rootfs.on('error', (e) => verify.destroy(e));
      verify.on('close', () => rootfs.destroy());
      return {
        format: 'split',
        fingerprint: fp,
        metadata: { filename: first.value.filename, data: Buffer.concat(metaChunks) },
        rootfs: { filename: rootPart.filename, data: rootfs.pipe(verify) },
      };
    } catch (error) {
      await parts.return(undefined).catch(() => {});
      res.stream.destroy();
      throw error;
    }
  }

  /** Exports into memory and verifies the fingerprint. For images that fit in memory. */
  exportToBuffer(fingerprint: string, opts: ExportOptions = {}): Promise<ExportedImage> {
    return withDeadline({ signal: opts.signal, timeout: opts.timeout }, BACKEND, async (d) => {
      const image = await this.get(fingerprint, { project: opts.project, signal: d.signal });
      const ex = await this.export(image.fingerprint, { ...opts, signal: d.signal, timeout: Number.POSITIVE_INFINITY });
      if (ex.format === 'unified') {
        return {
          format: 'unified',
          fingerprint: image.fingerprint,
          metadata: await collect(ex.data),
          rootfs: undefined,
        };
      }
      return {
        format: 'split',
        fingerprint: image.fingerprint,
        metadata: ex.metadata.data,
        rootfs: await collect(ex.rootfs.data),
      };
    });
  }

  /**
   * Copies an image from another LXD server or a SimpleStreams server into this one (LXD pulls
   * it), reporting LXD's download progress, then sets `aliases` on it. An abort leaves no image.
   */
  copyFrom(source: ImageCopySource, opts: ImageCopyOptions = {}): Promise<ImageResult> {
    return withDeadline({ signal: opts.signal, timeout: opts.timeout }, BACKEND, async (d) => {
      const op = await this.startCopy(source, { ...opts, signal: d.signal, timeout: undefined });
      return this.imageFrom(op, opts, d);
    });
  }

  /**
   * Makes an image of a stopped instance or of a snapshot (`lxc publish`), with properties and
   * aliases. An abort leaves no image.
   */
  async publish(source: ImagePublishSource, opts: ImagePublishOptions = {}): Promise<ImageResult> {
    const instance = checkInstanceName(source.instance, 'instance');
    const name =
      source.snapshot === undefined ? instance : `${instance}/${checkObjectName(source.snapshot, 'snapshot')}`;
    for (const a of opts.aliases ?? []) checkAliasName(typeof a === 'string' ? a : a.name, 'aliases');
    if (opts.expiresAt !== undefined && Number.isNaN(opts.expiresAt.getTime())) {
      throw new InvalidArgumentError({
        message: 'expiresAt is not a valid date',
        argument: 'expiresAt',
        backend: BACKEND,
      });
    }
    const body: ImagesPost = {
      source: { type: source.snapshot === undefined ? 'instance' : 'snapshot', name },
      public: opts.public ?? false,
    };
    if (opts.properties) body.properties = { ...opts.properties };
    if (opts.compressionAlgorithm) body.compression_algorithm = opts.compressionAlgorithm;
    if (opts.expiresAt) body.expires_at = opts.expiresAt.toISOString();
    if (opts.profiles) body.profiles = [...opts.profiles];
    return withDeadline({ signal: opts.signal, timeout: opts.timeout }, BACKEND, async (d) => {
      const op = await this.operation('POST', '/1.0/images', { project: opts.project, signal: d.signal, body });
      return this.imageFrom(op, opts, d);
    });
  }

  /** Waits for an operation that makes an image, reporting progress; sets aliases on the result. */
  private async imageFrom(
    op: LxdOperation,
    opts: LxdCallOptions & {
      aliases?: readonly (string | ImageAlias)[] | undefined;
      onProgress?: ((progress: OperationProgress) => void) | undefined;
    },
    d: Deadline,
  ): Promise<ImageResult> {
    const watching = new AbortController();
    if (opts.onProgress) {
      const onProgress = opts.onProgress;
      (async () => {
        for await (const p of op.progress({ signal: watching.signal })) onProgress(p);
      })().catch(() => {});
    }
    let done: Operation;
    try {
      done = await op.wait({ signal: d.signal });
    } catch (error) {
      if (d.reason()) {
        await op.cancel().catch(() => {});
        this.removeWhenDone(op, opts.project);
      }
      throw error;
    } finally {
      watching.abort();
    }
    const fingerprint = String((done.metadata as { fingerprint?: unknown } | null)?.fingerprint ?? '');
    const size = Number((done.metadata as { size?: unknown } | null)?.size ?? 0);
    const aliases = await this.setAliases(fingerprint, opts.aliases, { project: opts.project, signal: d.signal });
    return { fingerprint, size, aliases };
  }

  /** Starts a copy (POST /1.0/images, source type image, mode pull) and returns its operation unwaited. */
  async startCopy(source: ImageCopySource, opts: Omit<ImageCopyOptions, 'onProgress'> = {}): Promise<LxdOperation> {
    let server: URL;
    try {
      server = new URL(source.server);
    } catch (error) {
      throw new InvalidArgumentError({
        message: `Invalid server URL ${JSON.stringify(source.server)}`,
        argument: 'server',
        backend: BACKEND,
        cause: error,
      });
    }
    const protocol = source.protocol ?? 'lxd';
    if (!['http:', 'https:'].includes(server.protocol) || (protocol === 'lxd' && server.protocol !== 'https:')) {
      throw new InvalidArgumentError({
        message: `An image server is https:// (LXD) or http(s):// (SimpleStreams), not ${server.protocol}`,
        argument: 'server',
        backend: BACKEND,
      });
    }
    if (!source.alias === !source.fingerprint) {
      throw new InvalidArgumentError({
        message: 'Give exactly one of alias and fingerprint',
        argument: 'source',
        backend: BACKEND,
      });
    }
    if (source.alias) checkAliasName(source.alias, 'alias');
    if (source.fingerprint) checkFingerprint(source.fingerprint);
    for (const a of opts.aliases ?? []) checkAliasName(typeof a === 'string' ? a : a.name, 'aliases');
    const src: ImagesPostSource = { type: 'image', mode: 'pull', server: source.server, protocol };
    if (source.alias) src.alias = source.alias;
    if (source.fingerprint) src.fingerprint = source.fingerprint;
    if (source.certificate) src.certificate = source.certificate;
    if (source.secret) src.secret = source.secret;
    if (source.type) src.image_type = source.type;
    if (source.project) src.project = source.project;
    const body: ImagesPost = { source: src, public: opts.public ?? false, auto_update: opts.autoUpdate ?? false };
    if (opts.profiles) body.profiles = [...opts.profiles];
    const { aliases: _a, public: _p, autoUpdate: _u, profiles: _pr, ...call } = opts;
    return this.operation('POST', '/1.0/images', { ...call, body });
  }
}

/** Wraps opened data so its chunks also feed `hash`, in the order they are sent. */
function hashing(data: OpenedData, hash: ReturnType<typeof sha256>): OpenedData {
  return {
    ...data,
    async *chunks() {
      for await (const c of data.chunks()) {
        hash.update(c);
        yield c;
      }
    },
  };
}

function headerSafe(value: string, argument: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: header values cannot hold control characters
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new InvalidArgumentError({ message: `${argument} holds control characters`, argument, backend: BACKEND });
  }
  return value;
}

function dispositionFilename(disposition: string | undefined): string | undefined {
  const m = /filename="?([^";]+)"?/i.exec(disposition ?? '');
  return m?.[1];
}

function malformedExport(why: string): ChecksumMismatchError | InvalidArgumentError {
  return new InvalidArgumentError({
    message: `Unexpected export from LXD: ${why}`,
    argument: 'fingerprint',
    backend: BACKEND,
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
