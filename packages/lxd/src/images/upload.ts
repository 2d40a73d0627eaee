import { type FormPart, InvalidArgumentError, multipartBody } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { LxdOperation } from '../operation.js';
import { type LxdCallOptions, Resource } from '../resources/base.js';
import type { LxdTransport } from '../transport.js';
import type { ImageAlias, Operation } from '../types/api.js';
import { ChecksumMismatchError } from './errors.js';
import { type AliasList, checkAliases, type ImageResult, type ImageSteps, imageMade, underDeadline } from './steps.js';
import {
  byteStream,
  type ImageData,
  type OpenedData,
  openData,
  type ProgressCallback,
  progressOf,
  sha256,
} from './transfer.js';
import { checkFingerprint } from './validate.js';

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

/** Image uploads: `client.images.upload`. */
export class ImageUploader extends Resource {
  readonly #steps: ImageSteps;

  constructor(transport: LxdTransport, steps: ImageSteps) {
    super(transport);
    this.#steps = steps;
  }

  /**
   * Uploads a unified tarball or a split image (multipart: metadata, then rootfs), streamed, with
   * progress. The fingerprint is computed as the bytes go out (sha256 of the tarball, or of
   * metadata||rootfs) and must equal the one LXD reports, else ChecksumMismatchError (and the
   * image is removed). An abort or timeout mid-upload leaves no image behind.
   */
  async upload(image: ImageUpload, opts: TransferOptions = {}): Promise<ImageResult> {
    if (typeof image !== 'object' || image === null) {
      throw new InvalidArgumentError({ message: 'upload takes an image object', argument: 'image', backend: BACKEND });
    }
    const split = !('tarball' in image);
    if (image.fingerprint !== undefined) checkFingerprint(image.fingerprint, 'fingerprint');
    checkAliases(image.aliases);
    const headers = uploadHeaders(image);
    return underDeadline(opts, async (d) => {
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
      let chunks: AsyncIterable<Buffer>;
      let length: number | undefined;
      if (split) {
        const vm = image.type === 'virtual-machine';
        // Hash only the file bytes, not the multipart framing.
        const form: FormPart[] = [
          {
            name: 'metadata',
            filename: image.metadataFilename ?? 'metadata.tar',
            data: hashing(parts[0] as OpenedData, hash),
          },
          {
            name: vm ? 'rootfs.img' : 'rootfs',
            filename: image.rootfsFilename ?? (vm ? 'rootfs.img' : 'rootfs'),
            data: hashing(parts[1] as OpenedData, hash),
          },
        ];
        const body = multipartBody(form, BACKEND);
        headers['Content-Type'] = body.contentType;
        chunks = body.chunks;
        length = body.length;
      } else {
        headers['Content-Type'] = 'application/octet-stream';
        chunks = hashing(parts[0] as OpenedData, hash).chunks();
        length = parts[0]?.size;
      }
      if (length !== undefined) headers['Content-Length'] = String(length);
      if (expected) headers['X-LXD-fingerprint'] = expected;
      const body = byteStream(chunks);
      const onProgress = opts.onProgress;
      let op: LxdOperation;
      try {
        op = await this.operation(
          'POST',
          '/1.0/images',
          // The whole upload is bounded by the caller's timeout, not the transport's default.
          { project: opts.project, signal: d.signal, timeout: Number.POSITIVE_INFINITY },
          {
            rawBody: body,
            headers,
            onUploadProgress: onProgress && ((sent) => onProgress(progressOf(sent, length))),
          },
        );
      } finally {
        // Releases the sources (open files, the caller's stream) whatever happened.
        body.destroy();
      }
      let done: Operation;
      try {
        done = await op.wait({ signal: d.signal });
      } catch (error) {
        if (d.reason()) this.#steps.removeWhenDone(op, opts.project);
        throw error;
      }
      const { fingerprint, size } = imageMade(done);
      const actual = hash.digest('hex');
      if (fingerprint !== actual) {
        if (fingerprint) await this.#steps.delete(fingerprint, { project: opts.project }).catch(() => {});
        throw new ChecksumMismatchError({
          message: `LXD fingerprinted the upload as ${fingerprint || '(none)'}, but the bytes sent hash to ${actual}`,
          subject: 'image',
          expected: actual,
          actual: fingerprint,
          backend: BACKEND,
        });
      }
      const aliases = await this.#steps.setAliases(fingerprint, image.aliases as AliasList, {
        project: opts.project,
        signal: d.signal,
      });
      return { fingerprint, size, aliases };
    });
  }
}

/** The X-LXD-* headers every upload may carry, checked before anything is opened. */
function uploadHeaders(image: ImageUpload): Record<string, string> {
  const headers: Record<string, string> = {};
  if ('tarball' in image && image.filename !== undefined) {
    headers['X-LXD-filename'] = headerSafe(image.filename, 'filename');
  }
  if (image.public !== undefined && typeof image.public !== 'boolean') {
    throw new InvalidArgumentError({ message: 'public must be a boolean', argument: 'public', backend: BACKEND });
  }
  if (image.public) headers['X-LXD-public'] = 'true';
  if (image.properties !== undefined) {
    const entries = Object.entries(image.properties ?? {});
    if (entries.some(([, v]) => typeof v !== 'string')) {
      throw new InvalidArgumentError({ message: 'properties are strings', argument: 'properties', backend: BACKEND });
    }
    if (entries.length > 0) headers['X-LXD-properties'] = new URLSearchParams(entries).toString();
  }
  if (image.profiles !== undefined) {
    if (!Array.isArray(image.profiles) || image.profiles.some((p) => typeof p !== 'string' || p === '')) {
      throw new InvalidArgumentError({ message: 'profiles are names', argument: 'profiles', backend: BACKEND });
    }
    if (image.profiles.length > 0) {
      headers['X-LXD-profiles'] = new URLSearchParams(
        image.profiles.map((p): [string, string] => ['profile', p]),
      ).toString();
    }
  }
  return headers;
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

function headerSafe(value: unknown, argument: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: header values cannot hold control characters
  if (typeof value !== 'string' || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new InvalidArgumentError({
      message: `${argument} is a string without control characters`,
      argument,
      backend: BACKEND,
    });
  }
  return value;
}
