import { Readable } from 'node:stream';
import { ApiError, type CallOptions, callOptions, NotFoundError, path } from '@vmplane/common';
import { checkInstanceName, checkInstancePath, type LxdClient } from '@vmplane/lxd';
import { InvalidRequestError } from '../../errors.js';
import type { PathInfo } from '../provider.js';

/** Symlink targets are read whole; a longer "target" is not one LXD would give. */
const MAX_LINK = 64 * 1024;

/**
 * hypeman's PathInfo from LXD's files endpoint. HEAD (LXD 5.0.2's instance_file_head) carries
 * type and mode but no size, so this is a GET whose headers answer: Content-Length is the size of
 * a file, whose body is then dropped unread; a symlink's body is its target. LXD gives a relative
 * target joined onto the link's directory (`f` beside `/root/l` reads `/root/f`).
 *
 * A missing path is `{ exists: false }`; a missing instance is its NotFoundError (both are LXD
 * 404s, told apart by asking for the instance); other refusals (permissions, a path through a
 * file) are `{ exists: false, error }` as hypeman reports them.
 */
export async function statPath(lxd: LxdClient, name: string, filePath: string, opts: CallOptions): Promise<PathInfo> {
  let res: Awaited<ReturnType<LxdClient['transport']['raw']>>;
  try {
    res = await lxd.transport.raw({
      method: 'GET',
      path: path`/1.0/instances/${checkInstanceName(name)}/files`,
      query: { path: checkInstancePath(filePath) },
      ...callOptions(opts),
    });
  } catch (error) {
    if (error instanceof NotFoundError) {
      await lxd.instances.get(name, callOptions(opts)); // throws the instance's own 404
      return { exists: false };
    }
    if (error instanceof ApiError && error.status < 500) return { exists: false, error: error.message };
    throw error;
  }
  const header = (key: string) => {
    const value = res.headers[key];
    return Array.isArray(value) ? value[0] : value;
  };
  const type = header('x-lxd-type') ?? 'file';
  const mode = Number.parseInt(header('x-lxd-mode') ?? '', 8);
  const info: PathInfo = {
    exists: true,
    is_dir: type === 'directory',
    is_file: type === 'file',
    is_symlink: type === 'symlink',
  };
  if (Number.isInteger(mode)) info.mode = mode;
  const length = Number(header('content-length'));
  if (type === 'symlink' && Number.isSafeInteger(length) && length <= MAX_LINK) {
    info.link_target = (await res.buffer()).toString('utf8');
    return info;
  }
  if (type === 'file' && Number.isSafeInteger(length)) info.size = length;
  // A directory listing is small: reading it keeps the connection for the next call.
  if (type === 'directory') await res.buffer();
  else res.discard();
  return info;
}

/** A file's content as a stream that owns its connection (leaving early drops it). */
export async function readPath(
  lxd: LxdClient,
  name: string,
  filePath: string,
  opts: CallOptions,
): Promise<AsyncIterable<Uint8Array>> {
  const file = await lxd.instances.files.pullStream(name, filePath, callOptions(opts));
  if (file.type !== 'file') {
    file.stream.destroy();
    throw new InvalidRequestError({ message: `${filePath} is a ${file.type}, not a file`, field: 'path' });
  }
  return file.stream as AsyncIterable<Uint8Array>;
}

/**
 * Writes a file. Bytes go as they are (over SFTP when large: the client picks); a stream is
 * handed over as one Readable, read once.
 */
export async function writePath(
  lxd: LxdClient,
  name: string,
  filePath: string,
  data: AsyncIterable<Uint8Array> | Uint8Array,
  opts: CallOptions & { mode?: number },
): Promise<void> {
  const content = data instanceof Uint8Array ? data : Readable.from(data, { objectMode: false });
  await lxd.instances.files.push(name, filePath, content, {
    ...callOptions(opts),
    ...(opts.mode === undefined ? {} : { mode: opts.mode }),
  });
}
