import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join, posix, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import {
  ApiError,
  callOptions,
  InvalidArgumentError,
  NotFoundError,
  path,
  ServerError,
  withDeadline,
} from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstanceName, checkInstancePath } from '../names.js';
import { SftpSession, type SftpTransferOptions, type SftpWriteOptions } from '../sftp/session.js';
import { checkContent, type LxdCallOptions, Resource } from './base.js';
import { knownLength, PULL_OVER_SFTP_FROM, PUSH_OVER_SFTP_FROM, pullOverSftp, pushOverSftp } from './file-transfer.js';

export type FileType = 'file' | 'directory' | 'symlink';

/** Ownership and mode of a path inside an instance, from LXD's X-LXD-* headers. */
export interface FileHeaders {
  type: FileType;
  uid: number;
  gid: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
}

export type InstanceFile =
  | (FileHeaders & { type: 'file'; content: Buffer })
  | (FileHeaders & { type: 'directory'; entries: string[] })
  | (FileHeaders & { type: 'symlink'; target: string });

export interface PushOptions extends LxdCallOptions {
  /** Permission bits (default: LXD's 0644 for files, 0755 for directories). */
  mode?: number;
  uid?: number;
  gid?: number;
  type?: FileType;
  /** `overwrite` (default) or `append`. */
  write?: 'overwrite' | 'append';
  onUploadProgress?: (sent: number) => void;
}

export interface TreeOptions extends LxdCallOptions {
  /** Called after each path is copied. */
  onEntry?: (path: string, type: FileType) => void;
}

/** Files inside an instance: pull, push, delete, and whole directory trees. */
export class InstanceFiles extends Resource {
  private url(name: string): string {
    return path`/1.0/instances/${checkInstanceName(name)}/files`;
  }

  /**
   * Opens an SFTP session on the instance's filesystem (`lxc file` uses the same). Transfers are
   * pipelined, so large files move faster than through the files endpoint. Close it when done.
   */
  async sftp(name: string, opts: LxdCallOptions = {}): Promise<SftpSession> {
    return withDeadline(opts, BACKEND, async (d) => {
      const socket = await this.transport.upgrade(path`/1.0/instances/${checkInstanceName(name)}/sftp`, 'sftp', {
        signal: d.signal,
        project: opts.project,
      });
      // The session's handshake gets the same default timeout as any call.
      return SftpSession.start(socket, `sftp ${name}`, {
        signal: d.signal,
        timeout: opts.timeout ?? this.transport.defaultTimeout,
      });
    });
  }

  /**
   * Reads a file (content), a directory (entry names) or a symlink (target), with ownership and mode.
   * LXD 5.0 gives a relative symlink target joined onto the link's directory (`sub/f` reads `/dir/sub/f`).
   */
  async pull(name: string, filePath: string, opts: LxdCallOptions = {}): Promise<InstanceFile> {
    const res = await this.#get(name, filePath, opts);
    const headers = fileHeaders(res.headers);
    const length = Number(res.headers['content-length']);
    if (headers.type === 'file' && Number.isSafeInteger(length) && length >= PULL_OVER_SFTP_FROM) {
      // Large: the rest comes faster over SFTP, many reads in flight.
      res.discard();
      const file = await this.#overSftp(name, opts, (session, signal) =>
        pullOverSftp(session, filePath, signal, length),
      );
      if (file) return file;
      return this.#pullEndpoint(name, filePath, opts);
    }
    return fromEndpoint(headers, await res.buffer());
  }

  async #pullEndpoint(name: string, filePath: string, opts: LxdCallOptions): Promise<InstanceFile> {
    const res = await this.#get(name, filePath, opts);
    return fromEndpoint(fileHeaders(res.headers), await res.buffer());
  }

  /**
   * Runs `fn` on an SFTP session of its own, under the caller's deadline (the client's default
   * timeout while the session opens). Answers undefined when the daemon refuses the session, or
   * `fn` declines, so that the files endpoint answers instead.
   */
  async #overSftp<T>(
    name: string,
    opts: LxdCallOptions,
    fn: (session: SftpSession, signal: AbortSignal) => Promise<T | undefined | false>,
  ): Promise<T | undefined> {
    return withDeadline(callOptions(opts), BACKEND, async (d) => {
      let session: SftpSession;
      try {
        session = await this.sftp(name, {
          signal: d.signal,
          timeout: opts.timeout === undefined ? this.transport.defaultTimeout : Number.POSITIVE_INFINITY,
          project: opts.project,
        });
      } catch (error) {
        if (error instanceof ApiError) return undefined;
        throw error;
      }
      try {
        const out = await fn(session, d.signal);
        return out === false ? undefined : out;
      } finally {
        session.close();
      }
    });
  }

  /** Streams a file's content; the stream owns the connection (destroy it to stop early). */
  async pullStream(
    name: string,
    filePath: string,
    opts: LxdCallOptions = {},
  ): Promise<FileHeaders & { stream: Readable }> {
    const res = await this.#get(name, filePath, opts);
    return { ...fileHeaders(res.headers), stream: res.stream };
  }

  /**
   * The files endpoint's GET. The client's default timeout lasts until the answer begins; reading
   * the content is bounded only by the caller's `timeout` and `signal`.
   */
  #get(name: string, filePath: string, opts: LxdCallOptions) {
    return this.transport.raw(this.req('GET', this.url(name), opts, { query: { path: checkInstancePath(filePath) } }));
  }

  /**
   * Downloads a file straight to a local path, keeping its mode; returns its ownership, mode and
   * size. Goes over SFTP with many reads in flight, as `lxc file pull` does. A failed download
   * leaves no partial file behind.
   */
  async pullToFile(
    name: string,
    filePath: string,
    localPath: string,
    opts: SftpTransferOptions & { project?: string | undefined } = {},
  ): Promise<FileHeaders & { size: number }> {
    checkInstancePath(filePath);
    return withDeadline(opts, BACKEND, async (d) => {
      const session = await this.sftp(name, { signal: d.signal, project: opts.project });
      try {
        const link = await session.lstat(filePath, { signal: d.signal });
        if (link.type !== 'file') {
          throw new InvalidArgumentError({
            message: `${filePath} is a ${link.type}, not a file`,
            argument: 'path',
            backend: BACKEND,
          });
        }
        const mode = (link.mode ?? 0o644) & 0o7777;
        const writer = await BatchedFileWriter.create(localPath, mode);
        try {
          const read = await session.read(filePath, { signal: d.signal, onProgress: opts.onProgress }, (chunk) =>
            writer.add(chunk),
          );
          await writer.finish();
          return { type: 'file', uid: read.uid ?? 0, gid: read.gid ?? 0, mode, size: read.bytes };
        } catch (error) {
          await writer.discard();
          throw error;
        }
      } finally {
        session.close();
      }
    });
  }

  /**
   * Uploads a local file over SFTP (many writes in flight, as `lxc file push` does), with its own
   * mode unless `mode` says otherwise. Returns the bytes written.
   */
  async pushFromFile(
    name: string,
    localPath: string,
    filePath: string,
    opts: SftpTransferOptions & Pick<SftpWriteOptions, 'mode' | 'uid' | 'gid'> & { project?: string | undefined } = {},
  ): Promise<number> {
    checkInstancePath(filePath);
    return withDeadline(opts, BACKEND, async (d) => {
      const local = await stat(localPath);
      if (!local.isFile()) {
        throw new InvalidArgumentError({
          message: `${localPath} is not a file`,
          argument: 'localPath',
          backend: BACKEND,
        });
      }
      const session = await this.sftp(name, { signal: d.signal, project: opts.project });
      const source = createReadStream(localPath, { highWaterMark: 1024 * 1024 });
      try {
        return await session.writeFile(filePath, source, {
          signal: d.signal,
          mode: opts.mode ?? local.mode & 0o7777,
          uid: opts.uid,
          gid: opts.gid,
          onProgress: opts.onProgress,
        });
      } finally {
        source.destroy();
        session.close();
      }
    });
  }

  /**
   * Writes a file (bytes: Buffer, Uint8Array or ArrayBuffer; a string; or a stream), creates a
   * directory, or makes a symlink (content = target). A stream is read once and released
   * (destroyed) if the daemon answers before it was sent whole.
   */
  async push(
    name: string,
    filePath: string,
    content: Buffer | Uint8Array | ArrayBuffer | string | Readable,
    opts: PushOptions = {},
  ): Promise<void> {
    const url = this.url(name);
    const query = { path: checkInstancePath(filePath) };
    const rawBody = checkContent(content, 'content', { text: true });
    const headers = pushHeaders(opts ?? {});
    if (opts?.onUploadProgress !== undefined && typeof opts.onUploadProgress !== 'function') {
      throw new InvalidArgumentError({
        message: 'onUploadProgress must be a function',
        argument: 'onUploadProgress',
        backend: BACKEND,
      });
    }
    const size = knownLength(rawBody);
    if ((opts?.type ?? 'file') === 'file' && size !== undefined && size >= PUSH_OVER_SFTP_FROM) {
      // Large: it goes faster over SFTP, many writes in flight, with the endpoint's meaning.
      const done = await this.#overSftp(
        name,
        { ...opts, timeout: opts?.timeout ?? this.transport.defaultTimeout },
        (session, signal) =>
          pushOverSftp(session, query.path, rawBody, {
            signal,
            mode: opts.mode,
            uid: opts.uid,
            gid: opts.gid,
            write: opts.write,
            onUploadProgress: opts.onUploadProgress,
          }),
      );
      if (done) return;
    }
    await this.call('POST', url, opts, { query, headers, rawBody, onUploadProgress: opts?.onUploadProgress });
  }

  /** Creates a directory (and, with `parents`, its missing parents). The deadline covers all of them. */
  async mkdir(
    name: string,
    dirPath: string,
    opts: Omit<PushOptions, 'type' | 'write'> & { parents?: boolean } = {},
  ): Promise<void> {
    checkInstancePath(dirPath);
    const dirs = opts?.parents ? ancestors(dirPath) : [dirPath];
    await withDeadline(callOptions(opts), BACKEND, async (d) => {
      const each = { ...opts, signal: d.signal, timeout: undefined, type: 'directory' as const };
      for (const dir of dirs) {
        if (opts.parents) {
          const exists = await this.stat(name, dir, each).catch((error: unknown) => {
            if (error instanceof NotFoundError) return undefined;
            throw error;
          });
          if (exists?.type === 'directory') continue;
        }
        await this.push(name, dir, '', each);
      }
    });
  }

  async symlink(
    name: string,
    linkPath: string,
    target: string,
    opts: Omit<PushOptions, 'type' | 'write'> = {},
  ): Promise<void> {
    if (typeof target !== 'string' || target === '' || target.includes('\0')) {
      throw new InvalidArgumentError({
        message: 'A symlink target is a non-empty string without NUL',
        argument: 'target',
        backend: BACKEND,
      });
    }
    await this.push(name, linkPath, target, { ...opts, type: 'symlink' });
  }

  /** Type, ownership and mode without the content (the body is dropped unread). */
  async stat(name: string, filePath: string, opts: LxdCallOptions = {}): Promise<FileHeaders> {
    const res = await this.#get(name, filePath, opts);
    const length = Number(res.headers['content-length']);
    // A small body is read to keep the connection; a file's content is not worth reading.
    if (Number.isFinite(length) && length <= 64 * 1024) await res.buffer();
    else res.discard();
    return fileHeaders(res.headers);
  }

  async delete(name: string, filePath: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', this.url(name), opts, { query: { path: checkInstancePath(filePath) } });
  }

  /** Copies a local directory tree into the instance (creating missing parents), keeping modes and symlinks. */
  async pushTree(name: string, localDir: string, remoteDir: string, opts: TreeOptions = {}): Promise<void> {
    checkInstanceName(name);
    checkInstancePath(remoteDir);
    const root = resolve(checkLocalPath(localDir));
    await withDeadline(callOptions(opts), BACKEND, async (d) => {
      const call: LxdCallOptions = { signal: d.signal, project: opts.project };
      const walk = async (local: string, remote: string): Promise<void> => {
        const info = await lstat(local);
        const mode = info.mode & 0o7777;
        if (info.isSymbolicLink()) {
          await this.symlink(name, remote, await readlink(local), call);
          opts.onEntry?.(remote, 'symlink');
        } else if (info.isDirectory()) {
          await this.push(name, remote, '', { ...call, type: 'directory', mode });
          opts.onEntry?.(remote, 'directory');
          for (const entry of (await readdir(local)).sort()) await walk(join(local, entry), posix.join(remote, entry));
        } else if (info.isFile()) {
          // push releases the stream whatever happens, an early answer included.
          await this.push(name, remote, createReadStream(local, { highWaterMark: CHUNK }), { ...call, mode });
          opts.onEntry?.(remote, 'file');
        }
      };
      const parent = posix.dirname(remoteDir);
      if (parent !== '/') await this.mkdir(name, parent, { ...call, parents: true });
      await walk(root, remoteDir);
    });
  }

  /** Copies a directory tree out of the instance. Entry names that would escape `localDir` are refused. */
  async pullTree(name: string, remoteDir: string, localDir: string, opts: TreeOptions = {}): Promise<void> {
    checkInstanceName(name);
    checkInstancePath(remoteDir);
    const root = resolve(checkLocalPath(localDir));
    await withDeadline(callOptions(opts), BACKEND, async (d) => {
      const call: LxdCallOptions = { signal: d.signal, project: opts.project };
      const walk = async (remote: string, local: string): Promise<void> => {
        const inside = relative(root, local);
        if (inside.startsWith('..') || inside.split(sep).includes('..')) {
          throw new InvalidArgumentError({
            message: `Entry ${remote} would be written outside ${root}`,
            argument: 'path',
            backend: BACKEND,
          });
        }
        const head = await this.pullStream(name, remote, call);
        if (head.type === 'directory') {
          const entries = directoryEntries(await readAll(head.stream));
          await mkdir(local, { recursive: true, mode: head.mode });
          opts.onEntry?.(remote, 'directory');
          for (const entry of entries) {
            if (entry === '' || entry === '.' || entry === '..' || entry.includes('/')) {
              throw new InvalidArgumentError({
                message: `Refusing directory entry ${JSON.stringify(entry)}`,
                argument: 'path',
                backend: BACKEND,
              });
            }
            await walk(posix.join(remote, entry), join(local, entry));
          }
        } else if (head.type === 'symlink') {
          // LXD 5.0 answers a relative target joined onto the link's directory; a target inside the
          // copied tree is made relative again so that the local copy stands on its own.
          const target = (await readAll(head.stream)).toString('utf8');
          const insideTree = target === remoteDir || target.startsWith(`${remoteDir.replace(/\/$/, '')}/`);
          await symlink(insideTree ? posix.relative(posix.dirname(remote), target) : target, local);
          opts.onEntry?.(remote, 'symlink');
        } else {
          await writeBatched(head.stream, local, head.mode);
          opts.onEntry?.(remote, 'file');
        }
      };
      await walk(remoteDir, root);
    });
  }
}

/** A pull's result from the endpoint's headers and body. */
function fromEndpoint(headers: FileHeaders, body: Buffer): InstanceFile {
  if (headers.type === 'directory') return { ...headers, type: 'directory', entries: directoryEntries(body) };
  if (headers.type === 'symlink') return { ...headers, type: 'symlink', target: body.toString('utf8') };
  return { ...headers, type: 'file', content: body };
}

function checkLocalPath(value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw new InvalidArgumentError({
      message: 'A local path is a non-empty string',
      argument: 'localDir',
      backend: BACKEND,
    });
  }
  return value;
}

/** A directory's entry names, from the envelope LXD answers a directory GET with. */
function directoryEntries(body: Buffer): string[] {
  let metadata: unknown;
  try {
    metadata = (JSON.parse(body.toString('utf8')) as { metadata?: unknown }).metadata;
  } catch (error) {
    throw new ServerError({
      status: 200,
      message: 'LXD listed a directory in something that is not JSON',
      backend: BACKEND,
      cause: error,
    });
  }
  if (metadata === null || metadata === undefined) return [];
  if (!Array.isArray(metadata) || metadata.some((e) => typeof e !== 'string')) {
    throw new ServerError({ status: 200, message: 'LXD listed a directory in an unexpected shape', backend: BACKEND });
  }
  return metadata as string[];
}

function ancestors(p: string): string[] {
  const parts = p.split('/').filter(Boolean);
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`);
}

function octal(mode: number): string {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new InvalidArgumentError({ message: `Invalid mode ${String(mode)}`, argument: 'mode', backend: BACKEND });
  }
  return mode.toString(8).padStart(4, '0');
}

const FILE_TYPES: readonly string[] = ['file', 'directory', 'symlink'];
const WRITE_MODES: readonly string[] = ['overwrite', 'append'];

/** The X-LXD-* headers of a push, each option checked before anything is sent. */
function pushHeaders(opts: PushOptions): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
  if (opts.mode !== undefined) headers['X-LXD-mode'] = octal(opts.mode);
  for (const [key, header] of [
    ['uid', 'X-LXD-uid'],
    ['gid', 'X-LXD-gid'],
  ] as const) {
    const id = opts[key];
    if (id === undefined) continue;
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new InvalidArgumentError({ message: `Invalid ${key} ${String(id)}`, argument: key, backend: BACKEND });
    }
    headers[header] = String(id);
  }
  if (opts.type !== undefined) {
    if (!FILE_TYPES.includes(opts.type)) {
      throw new InvalidArgumentError({
        message: `Invalid file type ${String(opts.type)}`,
        argument: 'type',
        backend: BACKEND,
      });
    }
    headers['X-LXD-type'] = opts.type;
  }
  if (opts.write !== undefined) {
    if (!WRITE_MODES.includes(opts.write)) {
      throw new InvalidArgumentError({
        message: `Invalid write ${String(opts.write)}`,
        argument: 'write',
        backend: BACKEND,
      });
    }
    headers['X-LXD-write'] = opts.write;
  }
  return headers;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function fileHeaders(headers: Record<string, string | string[] | undefined>): FileHeaders {
  const type = (header(headers, 'x-lxd-type') ?? 'file') as FileType;
  return {
    type,
    uid: Number(header(headers, 'x-lxd-uid') ?? 0),
    gid: Number(header(headers, 'x-lxd-gid') ?? 0),
    mode: Number.parseInt(header(headers, 'x-lxd-mode') ?? '0', 8),
  };
}

const BATCH = 4 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/**
 * Writes a download to a file in few large writev calls, overlapping the next read with the
 * current write: one write per small chunk costs ~20% on big files.
 */
class BatchedFileWriter {
  private batch: Buffer[] = [];
  private batched = 0;
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly file: FileHandle,
    private readonly partPath: string,
    private readonly localPath: string,
    private readonly mode: number,
  ) {}

  /**
   * Writes go to a sibling `.part` file that replaces `localPath` only once complete: a failed
   * download neither leaves half a file nor destroys the one that was there.
   */
  static async create(localPath: string, mode: number): Promise<BatchedFileWriter> {
    const partPath = `${localPath}.${randomBytes(4).toString('hex')}.part`;
    // No setuid, setgid or sticky bit on the host from an instance's file, as with lxc.
    const safeMode = (mode || 0o644) & 0o777;
    return new BatchedFileWriter(await open(partPath, 'wx', safeMode), partPath, localPath, safeMode);
  }

  async add(chunk: Buffer): Promise<void> {
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched < BATCH) return;
    await this.writing;
    const writing = this.file.writev(this.batch);
    // Observed at once: it fails while the next batch is still being read.
    writing.catch(() => {});
    this.writing = writing;
    this.batch = [];
    this.batched = 0;
  }

  async finish(): Promise<void> {
    await this.writing;
    if (this.batched > 0) await this.file.writev(this.batch);
    // The mode passed to open() went through the umask.
    await this.file.chmod(this.mode);
    await this.file.close();
    await rename(this.partPath, this.localPath);
  }

  async discard(): Promise<void> {
    await this.writing.catch(() => {});
    await this.file.close().catch(() => {});
    await rm(this.partPath, { force: true });
  }
}

async function writeBatched(stream: Readable, localPath: string, mode: number): Promise<void> {
  const writer = await BatchedFileWriter.create(localPath, mode);
  try {
    for await (const chunk of stream) await writer.add(chunk as Buffer);
    await writer.finish();
  } catch (error) {
    await writer.discard();
    throw error;
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
