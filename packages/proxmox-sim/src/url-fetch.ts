import { createHash, type Hash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, fail } from './state.js';

/**
 * The download behind `download-url`, as PVE runs it: `wget -O tmp URL` (redirects followed, up to
 * 20), its failure reported by wget's last line of output, the file's digests computed on the way.
 * The bytes themselves are not kept: the simulator holds a file's size, digests and first bytes.
 */

export interface FetchedFile {
  size: number;
  digests: Record<ChecksumAlgorithm, string>;
  /** The first bytes (an image header). */
  head: Buffer;
}

/** A failed download, with the line wget would have ended on. */
export class WgetError extends Error {}

export interface FetchOptions {
  verifyCertificates: boolean;
  signal: AbortSignal;
  /** Refuse a body larger than this. */
  maxBytes: number;
  /** Whether a host may be contacted at all (redirects are checked hop by hop). */
  allowHost: (host: string) => boolean;
  /** Log lines, as the task log shows wget's. */
  log: (line: string) => void;
  now: () => Date;
}

const MAX_REDIRECTS = 20;
const HEAD_BYTES = 512;

/** Whether a URL host (as `URL.hostname` gives it) is on the loopback interface. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || /^::ffff:127\./.test(h);
}

const stamp = (d: Date) =>
  d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '');

/** strerror-like text for a socket error code, as wget prints it. */
function socketReason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ECONNRESET':
      return 'Connection reset by peer';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    case 'EHOSTUNREACH':
      return 'No route to host';
    case 'ENETUNREACH':
      return 'Network is unreachable';
    case 'EADDRNOTAVAIL':
      return 'Cannot assign requested address';
    default:
      return e.message;
  }
}

const TLS_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|UNABLE_TO_GET_ISSUER/;

export async function fetchUrl(url: string, opts: FetchOptions): Promise<FetchedFile> {
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    if (hop > MAX_REDIRECTS) throw new WgetError(`${MAX_REDIRECTS} redirections exceeded.`);
    if (!opts.allowHost(current.hostname))
      throw new WgetError(`the simulator does not fetch from '${current.host}' (it fetches loopback URLs only)`);
    opts.log(`--${stamp(opts.now())}--  ${current.href}`);
    const next = await fetchOnce(current, opts);
    if (next instanceof URL) {
      current = next;
      continue;
    }
    return next;
  }
}

function fetchOnce(url: URL, opts: FetchOptions): Promise<FetchedFile | URL> {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const where = `${url.hostname}:${port}`;
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    const req = get(url, {
      signal: opts.signal,
      headers: { 'User-Agent': 'Wget/1.21.3', Accept: '*/*' },
      ...(url.protocol === 'https:' ? { rejectUnauthorized: opts.verifyCertificates } : {}),
    });
    req.on('socket', () => opts.log(`Connecting to ${where}... `));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (opts.signal.aborted) reject(new WgetError('got interrupted by signal'));
      else if (TLS_ERRORS.test(e.code ?? ''))
        reject(new WgetError(`To connect to ${url.hostname} insecurely, use \`--no-check-certificate'.`));
      else reject(new WgetError(`Connecting to ${where}... failed: ${socketReason(e)}.`));
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const reason = res.statusMessage ?? '';
      opts.log(`HTTP request sent, awaiting response... ${status} ${reason}`);
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        res.resume();
        opts.log(`Location: ${location} [following]`);
        resolve(new URL(location, url));
        return;
      }
      if (status >= 400 || status < 200) {
        res.resume();
        reject(new WgetError(`${stamp(opts.now())} ERROR ${status}: ${reason}.`));
        return;
      }
      const hashes = Object.fromEntries(CHECKSUM_ALGORITHMS.map((a) => [a, createHash(a)])) as Record<
        ChecksumAlgorithm,
        Hash
      >;
      const head: Buffer[] = [];
      let headLength = 0;
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > opts.maxBytes) {
          req.destroy();
          reject(new WgetError(`the file is larger than the simulator takes (${opts.maxBytes} bytes)`));
          return;
        }
        for (const h of Object.values(hashes)) h.update(chunk);
        if (headLength < HEAD_BYTES) {
          head.push(chunk.subarray(0, HEAD_BYTES - headLength));
          headLength += Math.min(chunk.length, HEAD_BYTES - headLength);
        }
      });
      res.on('error', () => reject(new WgetError(`Read error at byte ${size} (Connection reset by peer). Giving up.`)));
      res.on('aborted', () =>
        reject(new WgetError(`Read error at byte ${size} (Connection reset by peer). Giving up.`)),
      );
      res.on('end', () => {
        const length = Number(res.headers['content-length'] ?? size);
        if (res.headers['content-length'] !== undefined && size < length) {
          reject(new WgetError(`Connection closed at byte ${size}. Giving up.`));
          return;
        }
        opts.log(`Length: ${size} [${res.headers['content-type'] ?? 'application/octet-stream'}]`);
        opts.log(`${stamp(opts.now())} - saved [${size}/${size}]`);
        const digests = Object.fromEntries(Object.entries(hashes).map(([a, h]) => [a, h.digest('hex')])) as Record<
          ChecksumAlgorithm,
          string
        >;
        resolve({ size, digests, head: Buffer.concat(head) });
      });
    });
  });
}

/**
 * What `qemu-img info -f FORMAT` would say of an untrusted image, as PVE 9 checks a downloaded or
 * uploaded import before keeping it: the virtual size, or the error it dies with.
 */
export function inspectImage(format: string, head: Buffer, size: number, path: string): { virtualSize: number } {
  const refuse = (why: string): never => fail(why);
  if (format === 'qcow2') {
    if (head.length < 32 || head.readUInt32BE(0) !== 0x514649fb)
      refuse(`qemu-img: Could not open '${path}': Image is not in qcow2 format`);
    if (head.readBigUInt64BE(8) !== 0n) refuse(`backing file not allowed for untrusted image '${path}'!`);
    return { virtualSize: Number(head.readBigUInt64BE(24)) };
  }
  if (format === 'vmdk') {
    if (head.length < 20 || head.toString('latin1', 0, 4) !== 'KDMV')
      refuse(`qemu-img: Could not open '${path}': Image is not in vmdk format`);
    return { virtualSize: Number(head.readBigUInt64LE(12)) * 512 };
  }
  return { virtualSize: size };
}
