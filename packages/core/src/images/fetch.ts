import { type CallOptions, withDeadline } from '@vmplane/common';
import type { CatalogueImage } from './catalogue.js';
import { type ChecksumEntry, parseChecksums } from './checksums.js';
import { ChecksumNotFoundError, ImageSourceError } from './errors.js';

/**
 * What vmplane itself asks of an image's server before PVE downloads it: that the image is there
 * (HEAD) and what its checksum is (the checksum file, GET). The download itself is PVE's.
 */

export interface ImageFetchOptions extends CallOptions {
  /** Injectable for tests of transports; the global fetch by default. */
  fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT = 30_000;
/** Checksum files are a few KiB; a larger answer is not one. */
const MAX_CHECKSUM_FILE = 1024 * 1024;

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}

async function request(url: string, method: 'GET' | 'HEAD', opts: ImageFetchOptions, signal: AbortSignal) {
  const doFetch = opts.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { method, signal, redirect: 'follow' });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new ImageSourceError({ url, message: `${method} ${url} failed: ${describe(error)}`, cause: error });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new ImageSourceError({
      url,
      httpStatus: res.status,
      message: `${method} ${url} answered ${res.status} ${res.statusText}`.trim(),
    });
  }
  return res;
}

/** Resolves when the image's URL answers a HEAD with a success status (after redirects). */
export async function checkImageUrl(url: string, opts: ImageFetchOptions = {}): Promise<{ size?: number }> {
  return withDeadline({ signal: opts.signal, timeout: opts.timeout ?? DEFAULT_TIMEOUT }, undefined, async (d) => {
    const res = await request(url, 'HEAD', opts, d.signal);
    await res.body?.cancel().catch(() => {});
    const length = Number(res.headers.get('content-length'));
    return Number.isFinite(length) && length > 0 ? { size: length } : {};
  });
}

async function readCapped(res: Response, url: string, cap: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    await res.body?.cancel().catch(() => {});
    throw new ImageSourceError({ url, message: `${url} is ${declared} bytes: no checksum file is that large` });
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > cap) {
        await res.body.cancel().catch(() => {});
        throw new ImageSourceError({ url, message: `${url} is larger than ${cap} bytes: no checksum file is` });
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The image's expected checksum from its publisher's checksum file. The request has a real
 * deadline (30 s by default); a file that lists no entry for the image is a ChecksumNotFoundError,
 * an unreachable or failing server an ImageSourceError, the deadline a TimeoutError.
 */
export async function fetchChecksum(image: CatalogueImage, opts: ImageFetchOptions = {}): Promise<ChecksumEntry> {
  return withDeadline({ signal: opts.signal, timeout: opts.timeout ?? DEFAULT_TIMEOUT }, undefined, async (d) => {
    const res = await request(image.checksumUrl, 'GET', opts, d.signal);
    const text = await readCapped(res, image.checksumUrl, MAX_CHECKSUM_FILE);
    const entry = parseChecksums(text, image.checksumFormat, image.checksumAlgorithm).get(image.file);
    if (!entry) throw new ChecksumNotFoundError({ file: image.file, checksumUrl: image.checksumUrl });
    return entry;
  });
}
