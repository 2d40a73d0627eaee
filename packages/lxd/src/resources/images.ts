import { InvalidArgumentError, path } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { ImageAliases } from '../images/aliases.js';
import {
  ImageCopier,
  type ImageCopyOptions,
  type ImageCopySource,
  type ImagePublishOptions,
  type ImagePublishSource,
} from '../images/copy.js';
import { type ExportedImage, type ExportOptions, type ImageExport, ImageExporter } from '../images/export.js';
import { type ImageResult, ImageSteps } from '../images/steps.js';
import { type ImageUpload, ImageUploader, type TransferOptions } from '../images/upload.js';
import { checkFingerprint } from '../images/validate.js';
import { namesFromUrls } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { LxdTransport } from '../transport.js';
import type { Image, ImagePut } from '../types/api.js';
import {
  found,
  type ListOptions,
  type LxdCallOptions,
  listParts,
  type RequestParts,
  Resource,
  type UpdateOptions,
} from './base.js';

export type {
  ImageCopyOptions,
  ImageCopySource,
  ImagePublishOptions,
  ImagePublishSource,
} from '../images/copy.js';
export type { ExportedImage, ExportOptions, ImageExport } from '../images/export.js';
export type { ImageResult } from '../images/steps.js';
export type {
  ImageUpload,
  ImageUploadCommon,
  SplitImageUpload,
  TransferOptions,
  UnifiedImageUpload,
} from '../images/upload.js';

export interface ImageListOptions extends ListOptions {
  /** Only public images (true) or only private ones (false); combined with `filter`. */
  public?: boolean | undefined;
}

export interface ImageSecret {
  secret: string;
  /** The operation holding the secret; `cancel()` revokes it. */
  operation: LxdOperation;
}

/**
 * Images: list, get, update, delete, refresh, secrets and aliases here; uploads, exports, copies
 * and publishing in `images/`.
 */
export class Images extends Resource {
  readonly aliases: ImageAliases;
  readonly #steps: ImageSteps;
  readonly #uploads: ImageUploader;
  readonly #exports: ImageExporter;
  readonly #copies: ImageCopier;

  constructor(transport: LxdTransport) {
    super(transport);
    this.aliases = new ImageAliases(transport);
    this.#steps = new ImageSteps(transport, this.aliases);
    this.#uploads = new ImageUploader(transport, this.#steps);
    this.#exports = new ImageExporter(transport);
    this.#copies = new ImageCopier(transport, this.#steps);
  }

  private item(fingerprint: string): string {
    return path`/1.0/images/${checkFingerprint(fingerprint)}`;
  }

  /** Fingerprints of every image (recursion=0). */
  async fingerprints(opts: ImageListOptions = {}): Promise<string[]> {
    return namesFromUrls(await this.call<string[]>('GET', '/1.0/images', opts, imageList(opts, 0)));
  }

  /** Same as `fingerprints`: image "names" are their fingerprints. */
  async names(opts: ImageListOptions = {}): Promise<string[]> {
    return this.fingerprints(opts);
  }

  async list(opts: ImageListOptions = {}): Promise<Image[]> {
    return this.call('GET', '/1.0/images', opts, imageList(opts, 1));
  }

  /** One image by fingerprint or unique prefix; `etagOf(result)` gives its ETag. */
  async get(fingerprint: string, opts: LxdCallOptions & { secret?: string } = {}): Promise<Image> {
    const secret = opts?.secret;
    if (secret !== undefined && typeof secret !== 'string') {
      throw new InvalidArgumentError({ message: 'secret must be a string', argument: 'secret', backend: BACKEND });
    }
    return this.read<Image>(this.item(fingerprint), opts, secret ? { query: { secret } } : {});
  }

  /** The image an alias points to. */
  async getByAlias(alias: string, opts: LxdCallOptions = {}): Promise<Image> {
    const entry = await this.aliases.get(alias, opts);
    return this.get(entry.target, opts);
  }

  async exists(fingerprint: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return found(this.get(fingerprint, opts));
  }

  /** Replaces the writable fields; with `etag` (from `etagOf`), fails with 412 if the image changed. */
  async update(fingerprint: string, put: ImagePut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PUT', this.item(fingerprint), opts, { body: put, etag: opts?.etag });
  }

  async patch(fingerprint: string, put: ImagePut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PATCH', this.item(fingerprint), opts, { body: put, etag: opts?.etag });
  }

  /** Deletes the image and waits until it is gone. */
  async delete(fingerprint: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.#steps.delete(fingerprint, opts);
  }

  /**
   * Asks LXD to refresh the image from its source (images copied with auto-update). Resolves true
   * when a newer image replaced it; a local image without a source fails with OperationFailedError.
   */
  async refresh(fingerprint: string, opts: LxdCallOptions = {}): Promise<boolean> {
    const done = await this.operationDone('POST', `${this.item(fingerprint)}/refresh`, opts, {});
    return Boolean((done.metadata as { refreshed?: unknown } | null)?.refreshed);
  }

  /** A one-time secret another party can use to fetch this (private) image. */
  async createSecret(fingerprint: string, opts: LxdCallOptions = {}): Promise<ImageSecret> {
    const { operation, answer } = await this.operationAndAnswer('POST', `${this.item(fingerprint)}/secret`, opts, {});
    const secret = (answer.metadata as { secret?: unknown } | null)?.secret;
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
  async upload(image: ImageUpload, opts: TransferOptions = {}): Promise<ImageResult> {
    return this.#uploads.upload(image, opts);
  }

  /**
   * Starts reading an export: a unified tarball as one stream, or a split image as its metadata
   * (in memory, it is small) and its rootfs stream. The client's default timeout lasts until the
   * answer begins; the caller's `timeout`, if any, covers the whole read.
   */
  async export(fingerprint: string, opts: ExportOptions = {}): Promise<ImageExport> {
    return this.#exports.export(fingerprint, opts);
  }

  /** Exports into memory and verifies the fingerprint. For images that fit in memory. */
  async exportToBuffer(fingerprint: string, opts: ExportOptions = {}): Promise<ExportedImage> {
    return this.#exports.exportToBuffer(fingerprint, opts);
  }

  /**
   * Copies an image from another LXD server or a SimpleStreams server into this one (LXD pulls
   * it), reporting LXD's download progress, then sets `aliases` on it. An abort leaves no image.
   */
  async copyFrom(source: ImageCopySource, opts: ImageCopyOptions = {}): Promise<ImageResult> {
    return this.#copies.copyFrom(source, opts);
  }

  /**
   * Makes an image of a stopped instance or of a snapshot (`lxc publish`), with properties and
   * aliases. An abort leaves no image.
   */
  async publish(source: ImagePublishSource, opts: ImagePublishOptions = {}): Promise<ImageResult> {
    return this.#copies.publish(source, opts);
  }

  /** Starts a copy (POST /1.0/images, source type image, mode pull) and returns its operation unwaited. */
  async startCopy(source: ImageCopySource, opts: Omit<ImageCopyOptions, 'onProgress'> = {}): Promise<LxdOperation> {
    return this.#copies.startCopy(source, opts);
  }
}

/** A list call's parts, with `public` folded into the filter. */
function imageList(opts: ImageListOptions, recursion: number): RequestParts {
  const parts = listParts(opts, recursion);
  if (opts?.public !== undefined) {
    if (typeof opts.public !== 'boolean') {
      throw new InvalidArgumentError({ message: 'public must be a boolean', argument: 'public', backend: BACKEND });
    }
    const only = `public eq ${opts.public}`;
    parts.query = { ...parts.query, filter: opts.filter ? `(${opts.filter}) and ${only}` : only };
  }
  return parts;
}
