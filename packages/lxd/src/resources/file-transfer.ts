import { Readable } from 'node:stream';
import { NotFoundError } from '@vmplane/common';
import type { SftpSession } from '../sftp/session.js';

/**
 * Files from these sizes move over SFTP rather than the files endpoint. LXD serves the endpoint
 * with its own SFTP client to the instance, one request at a time, while our session keeps many
 * reads and writes in flight; below these sizes the session's own set-up (an upgrade and a
 * handshake) costs more than it saves. A pull learns the size from the endpoint's answer, and
 * drops it to switch, which costs a request more. Measured side by side with pylxd and lxc
 * (`npm run bench:lxd`, and the sizes in between): pushes gain from about 1 MiB, pulls from 4-8 MiB.
 */
export const PUSH_OVER_SFTP_FROM = 1024 * 1024;
export const PULL_OVER_SFTP_FROM = 6 * 1024 * 1024;

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
 * Reads a regular file (the endpoint said it is one, and how long) over SFTP, with the endpoint's
 * headers: LXD reports the permission bits only. The bytes land in one buffer of the announced
 * size as they come, instead of thousands of chunks joined at the end (a second pass over all
 * of them); a file that grew meanwhile is read to its end all the same.
 */
export async function pullOverSftp(
  session: SftpSession,
  path: string,
  signal: AbortSignal,
  expected: number,
): Promise<{ type: 'file'; uid: number; gid: number; mode: number; content: Buffer }> {
  const into = Buffer.allocUnsafe(expected);
  const beyond: Buffer[] = [];
  let filled = 0;
  const read = await session.read(path, { signal }, (chunk) => {
    if (beyond.length === 0 && filled + chunk.length <= into.length) {
      chunk.copy(into, filled);
      filled += chunk.length;
    } else beyond.push(chunk);
  });
  const head = into.subarray(0, filled);
  return {
    type: 'file',
    uid: read.uid ?? 0,
    gid: read.gid ?? 0,
    mode: (read.mode ?? 0) & 0o777,
    content: beyond.length === 0 ? head : Buffer.concat([head, ...beyond]),
  };
}
