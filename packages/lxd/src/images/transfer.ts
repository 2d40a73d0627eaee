import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { ChecksumMismatchError } from './errors.js';

/** Image bytes to upload: in memory, a stream (read once), or a file on this machine. */
export type ImageData = Buffer | Uint8Array | ArrayBuffer | Readable | { path: string };

/** How far a transfer is: bytes so far and, when known, the total. */
export interface TransferProgress {
  bytes: number;
  total: number | undefined;
  /** 0-100 when the total is known. */
  percent: number | undefined;
}

export type ProgressCallback = (progress: TransferProgress) => void;

/** Image bytes made ready to send: a one-shot chunk source and, when known, its length. */
export interface OpenedData {
  size: number | undefined;
  /** The bytes when they are already in memory (lets us hash before sending). */
  buffer: Buffer | undefined;
  chunks(): AsyncIterable<Buffer>;
}

// Big enough to keep syscalls few, small enough for progress callbacks to be useful.
const CHUNK = 256 * 1024;

function isReadable(value: unknown): value is Readable {
  return (
    value instanceof Readable ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as Readable).pipe === 'function' &&
      Symbol.asyncIterator in value)
  );
}

/** Checks and opens upload data; refuses what is not bytes before anything is sent. */
export async function openData(data: unknown, argument: string): Promise<OpenedData> {
  if (Buffer.isBuffer(data) || data instanceof Uint8Array || data instanceof ArrayBuffer) {
    const buffer = Buffer.isBuffer(data)
      ? data
      : data instanceof ArrayBuffer
        ? Buffer.from(data)
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return {
      size: buffer.length,
      buffer,
      async *chunks() {
        for (let i = 0; i < buffer.length; i += CHUNK) yield buffer.subarray(i, i + CHUNK);
      },
    };
  }
  if (isReadable(data)) {
    return {
      size: undefined,
      buffer: undefined,
      async *chunks() {
        for await (const chunk of data) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      },
    };
  }
  if (typeof data === 'object' && data !== null && typeof (data as { path?: unknown }).path === 'string') {
    const file = (data as { path: string }).path;
    let size: number;
    try {
      const s = await stat(file);
      if (!s.isFile()) throw new Error('not a regular file');
      size = s.size;
    } catch (error) {
      throw new InvalidArgumentError({
        message: `Cannot read ${argument} file ${JSON.stringify(file)}: ${(error as Error).message}`,
        argument,
        backend: BACKEND,
        cause: error,
      });
    }
    return {
      size,
      buffer: undefined,
      async *chunks() {
        // Leaving the loop early (abort) destroys the read stream, closing the file.
        for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) yield chunk as Buffer;
      },
    };
  }
  throw new InvalidArgumentError({
    message: `${argument} must be bytes (Buffer, Uint8Array, ArrayBuffer), a Readable or { path }`,
    argument,
    backend: BACKEND,
  });
}

export function progressOf(bytes: number, total: number | undefined): TransferProgress {
  return {
    bytes,
    total,
    percent: total ? Math.min(100, Math.floor((bytes / total) * 100)) : undefined,
  };
}

export const sha256 = (): Hash => createHash('sha256');

/**
 * Counts (and optionally hashes) bytes passing through; at the end, fails the stream with a
 * ChecksumMismatchError if the hash is not `expected`, so a consumer never sees a clean end of bad bytes.
 */
export class VerifyingStream extends Transform {
  private bytes = 0;

  constructor(
    private readonly opts: {
      total?: number | undefined;
      onProgress?: ProgressCallback | undefined;
      hash?: Hash | undefined;
      /** When set, checked in flush: the hash over everything this hash saw. */
      expected?: string | undefined;
      subject?: string;
      backend?: string;
    },
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.opts.hash?.update(chunk);
    this.opts.onProgress?.(progressOf(this.bytes, this.opts.total));
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const { hash, expected } = this.opts;
    if (hash && expected) {
      const actual = hash.digest('hex');
      if (actual !== expected.toLowerCase()) {
        done(
          new ChecksumMismatchError({
            message: `${this.opts.subject ?? 'data'}: sha256 is ${actual}, expected ${expected}`,
            subject: this.opts.subject ?? 'data',
            expected,
            actual,
            backend: this.opts.backend ?? BACKEND,
          }),
        );
        return;
      }
    }
    done();
  }
}

/** A byte stream from an async generator of Buffers (not object mode, so http pipes it as bytes). */
export function byteStream(source: AsyncIterable<Buffer>): Readable {
  return Readable.from(source, { objectMode: false, highWaterMark: CHUNK });
}
