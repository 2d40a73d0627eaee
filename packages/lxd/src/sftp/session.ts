import { setMaxListeners } from 'node:events';
import type { Duplex, Readable } from 'node:stream';
import {
  AbortError,
  apiErrorFromStatus,
  type CallOptions,
  ConnectionError,
  InvalidArgumentError,
  withDeadline,
} from '@vmplane/common';
import { BACKEND } from '../errors.js';
import {
  fileTypeOf,
  OpenFlag,
  Packet,
  PacketReader,
  PacketSplitter,
  PacketWriter,
  type SftpAttrs,
  type SftpFileType,
  Status,
} from './wire.js';

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

interface Reply {
  type: number;
  body: PacketReader;
  /** Read from the body at once for STATUS replies. */
  status: { code: number; message: string } | undefined;
}

interface Pending {
  resolve(reply: Reply): void;
  reject(error: unknown): void;
}

/** What LXD's SFTP server (github.com/pkg/sftp) answers at most per READ. */
const READ_CHUNK = 32 * 1024;
/** Larger writes cost fewer round trips; the server takes packets up to 256 KiB. */
const WRITE_CHUNK = 128 * 1024;
/** Requests in flight per transfer: enough to keep the daemon busy, bounded in memory (4 MiB). */
const READ_WINDOW = 128;
const WRITE_WINDOW = 32;
/** How long a CLOSE may take to be answered before the call goes on without it. */
const CLOSE_WAIT = 5_000;

const STATUS_HTTP: Record<number, number> = {
  [Status.NO_SUCH_FILE]: 404,
  [Status.PERMISSION_DENIED]: 403,
  [Status.BAD_MESSAGE]: 400,
  [Status.OP_UNSUPPORTED]: 501,
};

/**
 * One SFTP session on an instance's filesystem, over the connection LXD upgrades
 * `/1.0/instances/{name}/sftp` to. Reads and writes are pipelined: many requests in flight on the
 * one connection, which is what makes large transfers fast. The session owns the connection;
 * close() ends it.
 */
export class SftpSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** OPEN/OPENDIR requests given up on: a handle they still get is closed, not leaked. */
  private readonly orphans = new Set<number>();
  private failure: Error | undefined;
  /** Extensions the server announced (e.g. posix-rename@openssh.com). */
  readonly extensions: ReadonlyMap<string, string>;

  private constructor(
    private readonly socket: Duplex,
    extensions: Map<string, string>,
    private readonly label: string,
  ) {
    this.extensions = extensions;
  }

  /**
   * Speaks INIT/VERSION on an upgraded connection; the session then owns it. On any failure,
   * including an abort or timeout before VERSION, the connection is destroyed.
   */
  static async start(socket: Duplex, label: string, opts: CallOptions = {}): Promise<SftpSession> {
    const splitter = new PacketSplitter();
    let session: SftpSession | undefined;
    const broken = (message: string) => brokenConnection(label, message);
    const version = new Promise<SftpSession>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const packet of splitter.push(chunk)) {
            if (session) {
              session.dispatch(packet);
              continue;
            }
            const body = new PacketReader(packet);
            if (body.byte() !== Packet.VERSION) throw broken('no SFTP VERSION');
            if (body.uint32() !== 3) throw broken('server does not speak SFTP version 3');
            const ext = new Map<string, string>();
            while (body.remaining > 0) ext.set(body.string(), body.string());
            // Made here, not after an await: packets and a close may follow in this same tick.
            session = new SftpSession(socket, ext, label);
            resolve(session);
          }
        } catch (error) {
          const failure = error instanceof ConnectionError ? error : broken(String(error));
          session?.fail(failure);
          reject(failure);
          socket.destroy();
        }
      });
      socket.once('close', () => {
        const error = broken('connection closed');
        reject(error);
        session?.fail(error);
      });
      socket.on('error', () => {});
    });
    version.catch(() => {});
    try {
      return await withDeadline(opts, BACKEND, async (d) => {
        socket.write(new PacketWriter(Packet.INIT, 16).uint32(3).finish());
        return await new Promise<SftpSession>((resolve, reject) => {
          d.signal.addEventListener('abort', () => reject(d.reason()), { once: true });
          version.then(resolve, reject);
        });
      });
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  /** Ends the session and its connection; requests still waiting fail. */
  close(): void {
    this.fail(new AbortError({ message: `${this.label}: session closed`, backend: BACKEND }));
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  // ---- metadata --------------------------------------------------------------------------------

  /** Follows symlinks. */
  async stat(path: string, opts: CallOptions = {}): Promise<SftpStat> {
    return this.guarded(opts, async (call) =>
      withStat((await this.expect(Packet.ATTRS, Packet.STAT, (w) => w.string(path), call, path)).attrs()),
    );
  }

  /** Does not follow a symlink: reports the link itself. */
  async lstat(path: string, opts: CallOptions = {}): Promise<SftpStat> {
    return this.guarded(opts, async (call) =>
      withStat((await this.expect(Packet.ATTRS, Packet.LSTAT, (w) => w.string(path), call, path)).attrs()),
    );
  }

  /** Changes mode, ownership, size or times (only what is given). */
  async setstat(path: string, attrs: SftpAttrs, opts: CallOptions = {}): Promise<void> {
    await this.guarded(opts, async (call) => {
      for (const group of attrGroups(attrs)) {
        await this.ok(Packet.SETSTAT, (w) => w.string(path).attrs(group), call, path);
      }
    });
  }

  /** A directory's entries, without `.` and `..`, each with its lstat. */
  async readdir(path: string, opts: CallOptions = {}): Promise<SftpDirEntry[]> {
    return withDeadline(opts, BACKEND, async (d) => {
      const call = { signal: d.signal };
      const handle = (await this.expect(Packet.HANDLE, Packet.OPENDIR, (w) => w.string(path), call, path)).bytes();
      const entries: SftpDirEntry[] = [];
      try {
        for (;;) {
          const reply = await this.send(Packet.READDIR, (w) => w.string(handle), call);
          if (reply.type === Packet.STATUS && statusOf(reply).code === Status.EOF) break;
          const body = this.body(reply, Packet.NAME, path);
          const count = body.uint32();
          for (let i = 0; i < count; i++) {
            const name = body.string();
            body.string(); // longname, for humans
            const stat = withStat(body.attrs());
            if (name !== '.' && name !== '..') entries.push({ name, stat });
          }
        }
      } finally {
        await this.closeHandle(handle, d.signal);
      }
      return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async mkdir(path: string, opts: CallOptions & { mode?: number | undefined } = {}): Promise<void> {
    const mode = opts.mode;
    await this.guarded(opts, async (call) => {
      await this.ok(Packet.MKDIR, (w) => w.string(path).attrs({ mode: mode ?? 0o755 }), call, path);
      // LXD 5.0's server makes every directory 0755 whatever MKDIR asks.
      if (mode !== undefined && (mode & 0o7777) !== 0o755) {
        await this.ok(Packet.SETSTAT, (w) => w.string(path).attrs({ mode }), call, path);
      }
    });
  }

  async rmdir(path: string, opts: CallOptions = {}): Promise<void> {
    await this.guarded(opts, (call) => this.ok(Packet.RMDIR, (w) => w.string(path), call, path));
  }

  /** Removes a file or a symlink. */
  async remove(path: string, opts: CallOptions = {}): Promise<void> {
    await this.guarded(opts, (call) => this.ok(Packet.REMOVE, (w) => w.string(path), call, path));
  }

  /** Renames, replacing an existing target where the server can (posix-rename@openssh.com). */
  async rename(from: string, to: string, opts: CallOptions = {}): Promise<void> {
    await this.guarded(opts, (call) =>
      this.extensions.has('posix-rename@openssh.com')
        ? this.ok(Packet.EXTENDED, (w) => w.string('posix-rename@openssh.com').string(from).string(to), call, from)
        : this.ok(Packet.RENAME, (w) => w.string(from).string(to), call, from),
    );
  }

  /** Makes `linkPath` point at `target`. */
  async symlink(target: string, linkPath: string, opts: CallOptions = {}): Promise<void> {
    // OpenSSH, and pkg/sftp after it, take the target first: the reverse of the draft's order.
    await this.guarded(opts, (call) =>
      this.ok(Packet.SYMLINK, (w) => w.string(target).string(linkPath), call, linkPath),
    );
  }

  async readlink(path: string, opts: CallOptions = {}): Promise<string> {
    return this.guarded(opts, (call) => this.firstName(Packet.READLINK, path, call));
  }

  /** The canonical absolute path. */
  async realpath(path: string, opts: CallOptions = {}): Promise<string> {
    return this.guarded(opts, (call) => this.firstName(Packet.REALPATH, path, call));
  }

  // ---- content ---------------------------------------------------------------------------------

  /** Reads a whole file, many chunks in flight. */
  async readFile(path: string, opts: SftpTransferOptions = {}): Promise<Buffer> {
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
    return withDeadline(opts, BACKEND, async (d) => {
      // Each request in flight listens for the abort.
      setMaxListeners(READ_WINDOW + 8, d.signal);
      const call = { signal: d.signal };
      const handle = await this.open(path, OpenFlag.READ, {}, call);
      try {
        const stat = withStat(await this.fstat(handle, path, call));
        if (stat.type === 'directory') {
          throw new InvalidArgumentError({ message: `${path} is a directory`, argument: 'path', backend: BACKEND });
        }
        const bytes = await this.readChunks(handle, stat.size ?? 0, path, d.signal, async (chunk, total) => {
          await sink(chunk);
          opts.onProgress?.(total);
        });
        return { ...stat, bytes };
      } finally {
        await this.closeHandle(handle, d.signal);
      }
    });
  }

  /** Writes a file from a Buffer or a stream, many chunks in flight; mode and owner set after. */
  async writeFile(path: string, content: Buffer | string | Readable, opts: SftpWriteOptions = {}): Promise<number> {
    return withDeadline(opts, BACKEND, async (d) => {
      setMaxListeners(WRITE_WINDOW + 8, d.signal);
      const call = { signal: d.signal };
      const flags = OpenFlag.WRITE | OpenFlag.CREAT | (opts.append ? OpenFlag.APPEND : OpenFlag.TRUNC);
      const handle = await this.open(path, flags, { mode: opts.mode ?? 0o644 }, call);
      let offset = 0;
      let closed = false;
      try {
        if (opts.append) offset = (await this.fstat(handle, path, call)).size ?? 0;
        const start = offset;
        const inFlight: Promise<unknown>[] = [];
        const sendChunk = async (chunk: Buffer) => {
          for (let i = 0; i < chunk.length; i += WRITE_CHUNK) {
            const part = chunk.subarray(i, i + WRITE_CHUNK);
            const at = offset;
            offset += part.length;
            if (inFlight.length >= WRITE_WINDOW) await inFlight.shift();
            const written = this.ok(
              Packet.WRITE,
              (w) => w.string(handle).uint64(at).string(part),
              call,
              path,
              32 + part.length,
            ).then(() => opts.onProgress?.(at + part.length - start));
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
          const now = await this.fstat(handle, path, call);
          attrs.uid = opts.uid ?? now.uid ?? 0;
          attrs.gid = opts.gid ?? now.gid ?? 0;
        }
        // The create mode passes through the umask; setting it again makes it exact.
        for (const group of attrGroups(attrs)) {
          await this.ok(Packet.FSETSTAT, (w) => w.string(handle).attrs(group), call, path);
        }
        closed = true;
        // A CLOSE can report a deferred write error: after writes it counts.
        await this.ok(Packet.CLOSE, (w) => w.string(handle), call, path);
        return offset - start;
      } finally {
        if (!closed) await this.closeHandle(handle, d.signal);
      }
    });
  }

  // ---- the protocol ----------------------------------------------------------------------------

  /** Runs one call under its own deadline, so `timeout` holds and aborts come typed. */
  private guarded<T>(opts: CallOptions, fn: (call: CallOptions) => Promise<T>): Promise<T> {
    return withDeadline(opts, BACKEND, (d) => fn({ signal: d.signal }));
  }

  private async readChunks(
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
      const reply = this.send(Packet.READ, (w) => w.string(handle).uint64(offset).uint32(length), { signal }).then(
        (r) => {
          if (r.type === Packet.STATUS && statusOf(r).code === Status.EOF) return null;
          return this.body(r, Packet.DATA, path).bytes();
        },
      );
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
        if (data.length > slot.length) throw this.protocolError(`${path}: DATA longer than the READ asked for`);
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

  private async open(path: string, flags: number, attrs: SftpAttrs, opts: CallOptions): Promise<Buffer> {
    return (
      await this.expect(Packet.HANDLE, Packet.OPEN, (w) => w.string(path).uint32(flags).attrs(attrs), opts, path)
    ).bytes();
  }

  private async fstat(handle: Buffer, path: string, opts: CallOptions): Promise<SftpAttrs> {
    return (await this.expect(Packet.ATTRS, Packet.FSTAT, (w) => w.string(handle), opts, path)).attrs();
  }

  /**
   * Closes a handle. After an abort or timeout the CLOSE goes out without waiting for its answer;
   * otherwise its answer is awaited for a few seconds at most, so a dead link cannot hold a call.
   */
  private async closeHandle(handle: Buffer, signal: AbortSignal | undefined): Promise<void> {
    if (this.failure) return;
    const closing = this.ok(
      Packet.CLOSE,
      (w) => w.string(handle),
      { signal: AbortSignal.timeout(CLOSE_WAIT) },
      'handle',
    );
    const settled = closing.catch(() => {});
    if (signal?.aborted) return;
    // The call's outcome is decided already; a CLOSE that fails or times out does not change it.
    await settled;
  }

  private async firstName(type: number, path: string, opts: CallOptions): Promise<string> {
    const body = await this.expect(Packet.NAME, type, (w) => w.string(path), opts, path);
    if (body.uint32() < 1) throw this.protocolError(`${path}: empty NAME reply`);
    return body.string();
  }

  private async ok(
    type: number,
    build: (w: PacketWriter) => void,
    opts: CallOptions,
    path: string,
    capacity?: number,
  ): Promise<void> {
    const reply = await this.send(type, build, opts, capacity);
    const status = statusOf(reply);
    if (reply.type !== Packet.STATUS || status.code !== Status.OK) throw this.errorOf(reply, path);
  }

  private async expect(
    expected: number,
    type: number,
    build: (w: PacketWriter) => void,
    opts: CallOptions,
    path: string,
  ): Promise<PacketReader> {
    return this.body(await this.send(type, build, opts), expected, path);
  }

  private body(reply: Reply, expected: number, path: string): PacketReader {
    if (reply.type === expected) return reply.body;
    throw this.errorOf(reply, path);
  }

  private send(type: number, build: (w: PacketWriter) => void, opts: CallOptions, capacity = 128): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.takeId();
    const w = new PacketWriter(type, capacity).uint32(id);
    build(w);
    const reply = new Promise<Reply>((resolve, reject) => {
      // On abort the reply may still come; it is dropped, and the session stays usable.
      const onAbort = () => {
        if (!this.pending.delete(id)) return;
        if (type === Packet.OPEN || type === Packet.OPENDIR) this.orphans.add(id);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (r) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
    });
    this.socket.write(w.finish());
    return reply;
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    return id;
  }

  private dispatch(packet: Buffer): void {
    const body = new PacketReader(packet);
    try {
      const type = body.byte();
      const id = body.uint32();
      const waiting = this.pending.get(id);
      if (!waiting) {
        if (this.orphans.delete(id) && type === Packet.HANDLE && !this.failure) {
          const handle = body.bytes();
          this.socket.write(new PacketWriter(Packet.CLOSE, 64).uint32(this.takeId()).string(handle).finish());
        }
        return;
      }
      this.pending.delete(id);
      let status: Reply['status'];
      if (type === Packet.STATUS) {
        const code = body.uint32();
        status = { code, message: body.remaining >= 4 ? body.string() : '' };
      }
      waiting.resolve({ type, body, status });
    } catch (error) {
      this.fail(this.protocolError(String(error)));
      this.socket.destroy();
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  private errorOf(reply: Reply, path: string): Error {
    if (reply.type !== Packet.STATUS) return this.protocolError(`${path}: unexpected SFTP reply ${reply.type}`);
    const { code, message } = statusOf(reply);
    if (code === Status.NO_CONNECTION || code === Status.CONNECTION_LOST) {
      return this.protocolError(message);
    }
    return apiErrorFromStatus({
      status: STATUS_HTTP[code] ?? 500,
      code,
      message: `${path}: ${message || `SFTP status ${code}`}`,
      backend: BACKEND,
      path,
    });
  }

  private protocolError(message: string): ConnectionError {
    return brokenConnection(this.label, message);
  }
}

function brokenConnection(label: string, message: string): ConnectionError {
  return new ConnectionError({ message: `${label}: ${message}`, backend: BACKEND, sent: true });
}

function statusOf(reply: Reply): { code: number; message: string } {
  return reply.status ?? { code: -1, message: '' };
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
