import { setMaxListeners } from 'node:events';
import type { Duplex, Readable } from 'node:stream';
import { inspect } from 'node:util';
import { type CallOptions, InvalidArgumentError, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstancePath, checkLinkTarget, checkResolvablePath } from '../names.js';
import { SftpChannel, statusOf } from './channel.js';
import { fileTypeOf, OpenFlag, Packet, type SftpAttrs, type SftpFileType, Status } from './wire.js';

/** A file's attributes as SFTP reports them, with its type read from the mode. */
export interface SftpStat extends SftpAttrs {
  type: SftpFileType;
}

export interface SftpDirEntry {
  name: string;
  stat: SftpStat;
}

export interface SftpTransferOptions extends CallOptions {
  /** Bytes moved so far, after each chunk. */
  onProgress?: ((bytes: number) => void) | undefined;
}

export interface SftpWriteOptions extends SftpTransferOptions {
  /** Permission bits for the file (default 0644 for a new file). */
  mode?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  /** Append instead of replacing the content. */
  append?: boolean | undefined;
}

/** What LXD's SFTP server (github.com/pkg/sftp) answers at most per READ. */
const READ_CHUNK = 32 * 1024;
/** Larger writes cost fewer round trips; the server takes packets up to 256 KiB. */
const WRITE_CHUNK = 128 * 1024;
/** Requests in flight per transfer: enough to keep the daemon busy, bounded in memory (4 MiB). */
const READ_WINDOW = 128;
const WRITE_WINDOW = 32;

/**
 * One SFTP session on an instance's filesystem, over the connection LXD upgrades
 * `/1.0/instances/{name}/sftp` to. Reads and writes are pipelined: many requests in flight on the
 * one connection, which is what makes large transfers fast. The session owns the connection;
 * close() ends it. Paths follow the files API's rules (absolute, no NUL, no '..'): anything else
 * is refused before it is sent. The protocol itself lives in channel.ts.
 */
export class SftpSession {
  readonly #channel: SftpChannel;

  private constructor(channel: SftpChannel) {
    this.#channel = channel;
  }

  /**
   * Speaks INIT/VERSION on an upgraded connection; the session then owns it. On any failure,
   * including an abort or timeout before VERSION, the connection is destroyed.
   */
  static async start(socket: Duplex, label: string, opts: CallOptions = {}): Promise<SftpSession> {
    return new SftpSession(await SftpChannel.start(socket, label, opts));
  }

  /** Extensions the server announced (e.g. posix-rename@openssh.com). */
  get extensions(): ReadonlyMap<string, string> {
    return this.#channel.extensions;
  }

  /** Ends the session and its connection; requests still waiting fail. */
  close(): void {
    this.#channel.close();
  }

  get closed(): boolean {
    return this.#channel.failure !== undefined;
  }

  /** What printing shows: the label and state, never the connection (whose TLS options hold the key). */
  toJSON(): Record<string, unknown> {
    return { sftp: this.#channel.label, closed: this.closed };
  }

  [inspect.custom](): string {
    return `SftpSession ${inspect(this.toJSON())}`;
  }

  // ---- metadata --------------------------------------------------------------------------------

  /** Follows symlinks. */
  async stat(path: string, opts: CallOptions = {}): Promise<SftpStat> {
    checkInstancePath(path);
    return this.#guarded(opts, async (call) =>
      withStat((await this.#channel.expect(Packet.ATTRS, Packet.STAT, (w) => w.string(path), call, path)).attrs()),
    );
  }

  /** Does not follow a symlink: reports the link itself. */
  async lstat(path: string, opts: CallOptions = {}): Promise<SftpStat> {
    checkInstancePath(path);
    return this.#guarded(opts, async (call) =>
      withStat((await this.#channel.expect(Packet.ATTRS, Packet.LSTAT, (w) => w.string(path), call, path)).attrs()),
    );
  }

  /** Changes mode, ownership, size or times (only what is given). */
  async setstat(path: string, attrs: SftpAttrs, opts: CallOptions = {}): Promise<void> {
    checkInstancePath(path);
    await this.#guarded(opts, async (call) => {
      for (const group of attrGroups(attrs)) {
        await this.#channel.ok(Packet.SETSTAT, (w) => w.string(path).attrs(group), call, path);
      }
    });
  }

  /** A directory's entries, without `.` and `..`, each with its lstat. */
  async readdir(path: string, opts: CallOptions = {}): Promise<SftpDirEntry[]> {
    checkInstancePath(path);
    return withDeadline(opts, BACKEND, async (d) => {
      const call = { signal: d.signal };
      const handle = (
        await this.#channel.expect(Packet.HANDLE, Packet.OPENDIR, (w) => w.string(path), call, path)
      ).bytes();
      const entries: SftpDirEntry[] = [];
      try {
        for (;;) {
          const reply = await this.#channel.send(Packet.READDIR, (w) => w.string(handle), call);
          if (reply.type === Packet.STATUS && statusOf(reply).code === Status.EOF) break;
          const body = this.#channel.body(reply, Packet.NAME, path);
          const count = body.uint32();
          for (let i = 0; i < count; i++) {
            const name = body.string();
            body.string(); // longname, for humans
            const stat = withStat(body.attrs());
            if (name !== '.' && name !== '..') entries.push({ name, stat });
          }
        }
      } finally {
        await this.#channel.closeHandle(handle, d.signal);
      }
      return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async mkdir(path: string, opts: CallOptions & { mode?: number | undefined } = {}): Promise<void> {
    checkInstancePath(path);
    const mode = opts.mode;
    await this.#guarded(opts, async (call) => {
      await this.#channel.ok(Packet.MKDIR, (w) => w.string(path).attrs({ mode: mode ?? 0o755 }), call, path);
      // LXD 5.0's server makes every directory 0755 whatever MKDIR asks.
      if (mode !== undefined && (mode & 0o7777) !== 0o755) {
        await this.#channel.ok(Packet.SETSTAT, (w) => w.string(path).attrs({ mode }), call, path);
      }
    });
  }

  async rmdir(path: string, opts: CallOptions = {}): Promise<void> {
    checkInstancePath(path);
    await this.#guarded(opts, (call) => this.#channel.ok(Packet.RMDIR, (w) => w.string(path), call, path));
  }

  /** Removes a file or a symlink. */
  async remove(path: string, opts: CallOptions = {}): Promise<void> {
    checkInstancePath(path);
    await this.#guarded(opts, (call) => this.#channel.ok(Packet.REMOVE, (w) => w.string(path), call, path));
  }

  /** Renames, replacing an existing target where the server can (posix-rename@openssh.com). */
  async rename(from: string, to: string, opts: CallOptions = {}): Promise<void> {
    checkInstancePath(from, 'from');
    checkInstancePath(to, 'to');
    await this.#guarded(opts, (call) =>
      this.#channel.extensions.has('posix-rename@openssh.com')
        ? this.#channel.ok(
            Packet.EXTENDED,
            (w) => w.string('posix-rename@openssh.com').string(from).string(to),
            call,
            from,
          )
        : this.#channel.ok(Packet.RENAME, (w) => w.string(from).string(to), call, from),
    );
  }

  /** Makes `linkPath` point at `target`. */
  async symlink(target: string, linkPath: string, opts: CallOptions = {}): Promise<void> {
    checkLinkTarget(target);
    checkInstancePath(linkPath, 'linkPath');
    // OpenSSH, and pkg/sftp after it, take the target first: the reverse of the draft's order.
    await this.#guarded(opts, (call) =>
      this.#channel.ok(Packet.SYMLINK, (w) => w.string(target).string(linkPath), call, linkPath),
    );
  }

  async readlink(path: string, opts: CallOptions = {}): Promise<string> {
    checkInstancePath(path);
    return this.#guarded(opts, (call) => this.#channel.firstName(Packet.READLINK, path, call));
  }

  /** The canonical absolute path. */
  async realpath(path: string, opts: CallOptions = {}): Promise<string> {
    checkResolvablePath(path);
    return this.#guarded(opts, (call) => this.#channel.firstName(Packet.REALPATH, path, call));
  }

  // ---- content ---------------------------------------------------------------------------------

  /** Reads a whole file, many chunks in flight. */
  async readFile(path: string, opts: SftpTransferOptions = {}): Promise<Buffer> {
    checkInstancePath(path);
    const chunks: Buffer[] = [];
    await this.read(path, opts, (chunk) => {
      chunks.push(chunk);
    });
    return Buffer.concat(chunks);
  }

  /**
   * Reads a file in order, handing each chunk to `sink` (awaited: a slow sink slows the reads).
   * Returns the file's attributes as they were when it was opened, and the bytes read.
   */
  async read(
    path: string,
    opts: SftpTransferOptions,
    sink: (chunk: Buffer) => void | Promise<void>,
  ): Promise<SftpStat & { bytes: number }> {
    checkInstancePath(path);
    return withDeadline(opts, BACKEND, async (d) => {
      // Each request in flight listens for the abort.
      setMaxListeners(READ_WINDOW + 8, d.signal);
      const call = { signal: d.signal };
      const handle = await this.#channel.open(path, OpenFlag.READ, {}, call);
      try {
        const stat = withStat(await this.#channel.fstat(handle, path, call));
        if (stat.type === 'directory') {
          throw new InvalidArgumentError({ message: `${path} is a directory`, argument: 'path', backend: BACKEND });
        }
        const bytes = await this.#readChunks(handle, stat.size ?? 0, path, d.signal, async (chunk, total) => {
          await sink(chunk);
          opts.onProgress?.(total);
        });
        return { ...stat, bytes };
      } finally {
        await this.#channel.closeHandle(handle, d.signal);
      }
    });
  }

  /** Writes a file from a Buffer or a stream, many chunks in flight; mode and owner set after. */
  async writeFile(path: string, content: Buffer | string | Readable, opts: SftpWriteOptions = {}): Promise<number> {
    checkInstancePath(path);
    checkContent(content);
    return withDeadline(opts, BACKEND, async (d) => {
      setMaxListeners(WRITE_WINDOW + 8, d.signal);
      const call = { signal: d.signal };
      const flags = OpenFlag.WRITE | OpenFlag.CREAT | (opts.append ? OpenFlag.APPEND : OpenFlag.TRUNC);
      const handle = await this.#channel.open(path, flags, { mode: opts.mode ?? 0o644 }, call);
      let offset = 0;
      let closed = false;
      try {
        if (opts.append) offset = (await this.#channel.fstat(handle, path, call)).size ?? 0;
        const start = offset;
        const inFlight: Promise<unknown>[] = [];
        const sendChunk = async (chunk: Buffer) => {
          for (let i = 0; i < chunk.length; i += WRITE_CHUNK) {
            const part = chunk.subarray(i, i + WRITE_CHUNK);
            const at = offset;
            offset += part.length;
            if (inFlight.length >= WRITE_WINDOW) await inFlight.shift();
            const written = this.#channel
              .ok(Packet.WRITE, (w) => w.string(handle).uint64(at).string(part), call, path, 32 + part.length)
              .then(() => opts.onProgress?.(at + part.length - start));
            // Observed at once: a failure while the source is being read must not go unhandled.
            written.catch(() => {});
            inFlight.push(written);
          }
        };
        let failure: { error: unknown } | undefined;
        try {
          if (typeof content === 'string') await sendChunk(Buffer.from(content, 'utf8'));
          else if (Buffer.isBuffer(content)) await sendChunk(content);
          else for await (const chunk of content) await sendChunk(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        } catch (error) {
          failure = { error };
        }
        // Every write is settled before the handle closes, whatever happened.
        const settled = await Promise.allSettled(inFlight);
        if (failure) throw failure.error;
        const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (rejected) throw rejected.reason;
        const attrs: SftpAttrs = {};
        if (opts.mode !== undefined) attrs.mode = opts.mode;
        if (opts.uid !== undefined || opts.gid !== undefined) {
          const now = await this.#channel.fstat(handle, path, call);
          attrs.uid = opts.uid ?? now.uid ?? 0;
          attrs.gid = opts.gid ?? now.gid ?? 0;
        }
        // The create mode passes through the umask; setting it again makes it exact.
        for (const group of attrGroups(attrs)) {
          await this.#channel.ok(Packet.FSETSTAT, (w) => w.string(handle).attrs(group), call, path);
        }
        closed = true;
        // A CLOSE can report a deferred write error: after writes it counts.
        await this.#channel.ok(Packet.CLOSE, (w) => w.string(handle), call, path);
        return offset - start;
      } finally {
        if (!closed) await this.#channel.closeHandle(handle, d.signal);
      }
    });
  }

  // ---- the protocol ----------------------------------------------------------------------------

  /** Runs one call under its own deadline, so `timeout` holds and aborts come typed. */
  #guarded<T>(opts: CallOptions, fn: (call: CallOptions) => Promise<T>): Promise<T> {
    return withDeadline(opts, BACKEND, (d) => fn({ signal: d.signal }));
  }

  async #readChunks(
    handle: Buffer,
    size: number,
    path: string,
    signal: AbortSignal,
    onChunk: (chunk: Buffer, total: number) => Promise<void>,
  ): Promise<number> {
    interface Slot {
      offset: number;
      length: number;
      reply: Promise<Buffer | null>;
    }
    const request = (offset: number, length: number): Slot => {
      const reply = this.#channel
        .send(Packet.READ, (w) => w.string(handle).uint64(offset).uint32(length), { signal })
        .then((r) => {
          if (r.type === Packet.STATUS && statusOf(r).code === Status.EOF) return null;
          return this.#channel.body(r, Packet.DATA, path).bytes();
        });
      reply.catch(() => {});
      return { offset, length, reply };
    };
    const queue: Slot[] = [];
    // Requests run to the size seen at open, then one past it: a file that grew is read to its end.
    let next = 0;
    let total = 0;
    let tail = false;
    try {
      for (;;) {
        while (queue.length < READ_WINDOW && (next < size || (!tail && queue.length === 0))) {
          if (next >= size) tail = true;
          queue.push(request(next, READ_CHUNK));
          next += READ_CHUNK;
        }
        const slot = queue.shift();
        if (!slot) return total;
        const data = await slot.reply;
        if (data === null || data.length === 0) return total;
        if (data.length > slot.length)
          throw this.#channel.protocolError(`${path}: DATA longer than the READ asked for`);
        total += data.length;
        await onChunk(data, total);
        if (data.length < slot.length) {
          // A short read: the rest of this slot comes before anything queued after it.
          queue.unshift(request(slot.offset + data.length, slot.length - data.length));
        } else if (tail && queue.length === 0) {
          tail = false;
        }
      }
    } finally {
      await Promise.allSettled(queue.map((s) => s.reply));
    }
  }
}

/**
 * Attributes split into one group per field: LXD 5.0's SFTP server reads a SETSTAT carrying both
 * ownership and permissions in the wrong order (mode 0600 with uid 11 sets mode 013), so each
 * goes in a request of its own.
 */
function attrGroups(a: SftpAttrs): SftpAttrs[] {
  const groups: SftpAttrs[] = [];
  if (a.size !== undefined) groups.push({ size: a.size });
  if (a.uid !== undefined || a.gid !== undefined) groups.push({ uid: a.uid ?? 0, gid: a.gid ?? 0 });
  if (a.mode !== undefined) groups.push({ mode: a.mode });
  if (a.atime !== undefined || a.mtime !== undefined) {
    groups.push({ atime: a.atime ?? a.mtime ?? 0, mtime: a.mtime ?? a.atime ?? 0 });
  }
  return groups;
}

function withStat(attrs: SftpAttrs): SftpStat {
  return { ...attrs, type: fileTypeOf(attrs.mode) };
}

/** What writeFile takes: a Buffer, a string or a Readable. */
function checkContent(content: unknown): void {
  if (
    typeof content === 'string' ||
    Buffer.isBuffer(content) ||
    (typeof content === 'object' && content !== null && Symbol.asyncIterator in content)
  ) {
    return;
  }
  throw new InvalidArgumentError({
    message: 'content must be a Buffer, a string or a Readable',
    argument: 'content',
    backend: BACKEND,
  });
}
