import { Readable } from 'node:stream';
import { NotFoundError } from '@vmplane/common';
import type { SftpSession, SftpStat } from '../sftp/session.js';

/**
 * Files at least this large move over SFTP rather than the files endpoint. LXD serves the files
 * endpoint with its own SFTP client to the instance, one request at a time, while our SFTP
 * session keeps many reads and writes in flight; below this size the session's own set-up (an
 * upgrade and a handshake) costs more than it saves. Measured with `npm run bench:lxd`.
 */
export const SFTP_THRESHOLD = 8 * 1024 * 1024;

/** The length of content whose length is known before sending: text and bytes. */
export function knownLength(content: unknown): number | undefined {
  if (typeof content === 'string') return Buffer.byteLength(content);
  if (content instanceof Uint8Array || content instanceof ArrayBuffer) return content.byteLength;
  return undefined;
}

/** Bytes, text or a stream as the SFTP session takes them, without copying bytes. */
function sessionContent(content: Buffer | Uint8Array | ArrayBuffer | string | Readable): Buffer | string | Readable {
  if (typeof content === 'string' || Buffer.isBuffer(content)) return content;
  if (content instanceof Uint8Array) return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  if (content instanceof ArrayBuffer) return Buffer.from(content);
  if (content instanceof Readable) return content;
  return Readable.from(content as AsyncIterable<Uint8Array>, { objectMode: false });
}

export interface SftpPush {
  mode?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  write?: 'overwrite' | 'append' | undefined;
  signal: AbortSignal;
  onUploadProgress?: ((sent: number) => void) | undefined;
}

/**
 * A file push over SFTP with the files endpoint's meaning (LXD 5.0's instanceFilePost): the
 * content replaces or extends the file; mode and owner apply only to a file the push creates.
 * Answers false when only the endpoint can say what happens (appending to a missing file).
 */
export async function pushOverSftp(
  session: SftpSession,
  path: string,
  content: Buffer | Uint8Array | ArrayBuffer | string | Readable,
  opts: SftpPush,
): Promise<boolean> {
  const call = { signal: opts.signal };
  const exists = await session.stat(path, call).then(
    () => true,
    (error: unknown) => {
      if (error instanceof NotFoundError) return false;
      throw error;
    },
  );
  const append = opts.write === 'append';
  if (append && !exists) return false;
  await session.writeFile(path, sessionContent(content), {
    ...call,
    append,
    ...(exists ? {} : { mode: opts.mode, uid: opts.uid, gid: opts.gid }),
    onProgress: opts.onUploadProgress,
  });
  return true;
}

/**
 * Reads a regular file over SFTP with the endpoint's headers (LXD reports the permission bits
 * only). Answers undefined for anything else, which the endpoint describes in its own way.
 */
export async function pullOverSftp(
  session: SftpSession,
  path: string,
  signal: AbortSignal,
): Promise<{ type: 'file'; uid: number; gid: number; mode: number; content: Buffer } | undefined> {
  const link: SftpStat = await session.lstat(path, { signal });
  if (link.type !== 'file') return undefined;
  const chunks: Buffer[] = [];
  const read = await session.read(path, { signal }, (chunk) => {
    chunks.push(chunk);
  });
  return {
    type: 'file',
    uid: read.uid ?? 0,
    gid: read.gid ?? 0,
    mode: (read.mode ?? 0) & 0o777,
    content: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, read.bytes),
  };
}
