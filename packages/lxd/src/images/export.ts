import type { Readable } from 'node:stream';
import { InvalidArgumentError, path, ServerError } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { Resource } from '../resources/base.js';
import type { Image } from '../types/api.js';
import { boundaryOf, multipartParts } from './multipart.js';
import { underDeadline } from './steps.js';
import { byteStream, progressOf, sha256, VerifyingStream } from './transfer.js';
import type { TransferOptions } from './upload.js';
import { checkFingerprint } from './validate.js';

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

/** Image exports: `client.images.export` and `exportToBuffer`. */
export class ImageExporter extends Resource {
  /**
   * Starts reading an export: a unified tarball as one stream, or a split image as its metadata
   * (in memory, it is small) and its rootfs stream. The deadline, if any, covers the whole read.
   */
  async export(fingerprint: string, opts: ExportOptions = {}): Promise<ImageExport> {
    const fp = checkFingerprint(fingerprint);
    if (opts?.secret !== undefined && typeof opts.secret !== 'string') {
      throw new InvalidArgumentError({ message: 'secret must be a string', argument: 'secret', backend: BACKEND });
    }
    // The client's default timeout lasts until the answer begins; the caller's covers the read.
    const res = await this.transport.raw(
      this.req(
        'GET',
        path`/1.0/images/${fp}/export`,
        { project: opts.project, signal: opts.signal, timeout: opts.timeout },
        { query: opts.secret ? { secret: opts.secret } : {} },
      ),
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
  async exportToBuffer(fingerprint: string, opts: ExportOptions = {}): Promise<ExportedImage> {
    const fp = checkFingerprint(fingerprint);
    return underDeadline(opts, async (d) => {
      const call = { project: opts.project, signal: d.signal };
      const image = await this.read<Image>(path`/1.0/images/${fp}`, call, {
        query: opts.secret ? { secret: opts.secret } : {},
      });
      const ex = await this.export(image.fingerprint, { ...call, secret: opts.secret, onProgress: opts.onProgress });
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
}

function dispositionFilename(disposition: string | undefined): string | undefined {
  const m = /filename="?([^";]+)"?/i.exec(disposition ?? '');
  return m?.[1];
}

function malformedExport(why: string): ServerError {
  return new ServerError({ status: 502, message: `Unexpected export from LXD: ${why}`, backend: BACKEND });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
