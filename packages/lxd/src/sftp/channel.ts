import type { Duplex } from 'node:stream';
import { AbortError, apiErrorFromStatus, type CallOptions, ConnectionError, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { Packet, PacketReader, PacketSplitter, PacketWriter, type SftpAttrs, Status } from './wire.js';

/**
 * The SFTP protocol on one connection: INIT/VERSION, request ids, replies dispatched to the
 * requests waiting for them, handles of given-up OPENs closed when they arrive, and one failure
 * that ends every request. What the requests mean is the session's business (session.ts).
 */

export interface Reply {
  type: number;
  body: PacketReader;
  /** Read from the body at once for STATUS replies. */
  status: { code: number; message: string } | undefined;
}

interface Pending {
  resolve(reply: Reply): void;
  reject(error: unknown): void;
}

/** How long a CLOSE may take to be answered before the call goes on without it. */
const CLOSE_WAIT = 5_000;

const STATUS_HTTP: Record<number, number> = {
  [Status.NO_SUCH_FILE]: 404,
  [Status.PERMISSION_DENIED]: 403,
  [Status.BAD_MESSAGE]: 400,
  [Status.OP_UNSUPPORTED]: 501,
};

export class SftpChannel {
  readonly #socket: Duplex;
  readonly #label: string;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  /** OPEN/OPENDIR requests given up on: a handle they still get is closed, not leaked. */
  readonly #orphans = new Set<number>();
  #failure: Error | undefined;
  /** Extensions the server announced (e.g. posix-rename@openssh.com). */
  readonly extensions: ReadonlyMap<string, string>;

  private constructor(socket: Duplex, extensions: Map<string, string>, label: string) {
    this.#socket = socket;
    this.extensions = extensions;
    this.#label = label;
  }

  /**
   * Speaks INIT/VERSION on an upgraded connection; the channel then owns it. On any failure,
   * including an abort or timeout before VERSION, the connection is destroyed.
   */
  static async start(socket: Duplex, label: string, opts: CallOptions = {}): Promise<SftpChannel> {
    const splitter = new PacketSplitter();
    let channel: SftpChannel | undefined;
    const broken = (message: string) => brokenConnection(label, message);
    const version = new Promise<SftpChannel>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const packet of splitter.push(chunk)) {
            if (channel) {
              channel.#dispatch(packet);
              continue;
            }
            const body = new PacketReader(packet);
            if (body.byte() !== Packet.VERSION) throw broken('no SFTP VERSION');
            if (body.uint32() !== 3) throw broken('server does not speak SFTP version 3');
            const ext = new Map<string, string>();
            while (body.remaining > 0) ext.set(body.string(), body.string());
            // Made here, not after an await: packets and a close may follow in this same tick.
            channel = new SftpChannel(socket, ext, label);
            resolve(channel);
          }
        } catch (error) {
          const failure = error instanceof ConnectionError ? error : broken(String(error));
          if (channel) channel.#fail(failure);
          reject(failure);
          socket.destroy();
        }
      });
      socket.once('close', () => {
        const error = broken('connection closed');
        reject(error);
        if (channel) channel.#fail(error);
      });
      socket.on('error', () => {});
    });
    version.catch(() => {});
    try {
      return await withDeadline(opts, BACKEND, async (d) => {
        socket.write(new PacketWriter(Packet.INIT, 16).uint32(3).finish());
        return await new Promise<SftpChannel>((resolve, reject) => {
          d.signal.addEventListener('abort', () => reject(d.reason()), { once: true });
          version.then(resolve, reject);
        });
      });
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  get label(): string {
    return this.#label;
  }

  /** The error that ended the channel, once it has ended. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Ends the channel and its connection; requests still waiting fail. */
  close(): void {
    this.#fail(new AbortError({ message: `${this.#label}: session closed`, backend: BACKEND }));
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1_000).unref();
  }

  /** Sends a request and resolves with its reply; an abort drops the reply, not the channel. */
  send(type: number, build: (w: PacketWriter) => void, opts: CallOptions, capacity = 128): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#takeId();
    const w = new PacketWriter(type, capacity).uint32(id);
    build(w);
    const reply = new Promise<Reply>((resolve, reject) => {
      // On abort the reply may still come; it is dropped, and the session stays usable.
      const onAbort = () => {
        if (!this.#pending.delete(id)) return;
        if (type === Packet.OPEN || type === Packet.OPENDIR) this.#orphans.add(id);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
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
    this.#socket.write(w.finish());
    return reply;
  }

  /** A request answered by STATUS OK; any other answer is thrown as the typed error it names. */
  async ok(
    type: number,
    build: (w: PacketWriter) => void,
    opts: CallOptions,
    path: string,
    capacity?: number,
  ): Promise<void> {
    const reply = await this.send(type, build, opts, capacity);
    if (reply.type !== Packet.STATUS || statusOf(reply).code !== Status.OK) throw this.errorOf(reply, path);
  }

  /** A request answered by a packet of type `expected`, whose body is returned. */
  async expect(
    expected: number,
    type: number,
    build: (w: PacketWriter) => void,
    opts: CallOptions,
    path: string,
  ): Promise<PacketReader> {
    return this.body(await this.send(type, build, opts), expected, path);
  }

  body(reply: Reply, expected: number, path: string): PacketReader {
    if (reply.type === expected) return reply.body;
    throw this.errorOf(reply, path);
  }

  async open(path: string, flags: number, attrs: SftpAttrs, opts: CallOptions): Promise<Buffer> {
    return (
      await this.expect(Packet.HANDLE, Packet.OPEN, (w) => w.string(path).uint32(flags).attrs(attrs), opts, path)
    ).bytes();
  }

  async fstat(handle: Buffer, path: string, opts: CallOptions): Promise<SftpAttrs> {
    return (await this.expect(Packet.ATTRS, Packet.FSTAT, (w) => w.string(handle), opts, path)).attrs();
  }

  /**
   * Closes a handle. After an abort or timeout the CLOSE goes out without waiting for its answer;
   * otherwise its answer is awaited for a few seconds at most, so a dead link cannot hold a call.
   */
  async closeHandle(handle: Buffer, signal: AbortSignal | undefined): Promise<void> {
    if (this.#failure) return;
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

  /** The first name of a NAME reply (READLINK, REALPATH). */
  async firstName(type: number, path: string, opts: CallOptions): Promise<string> {
    const body = await this.expect(Packet.NAME, type, (w) => w.string(path), opts, path);
    if (body.uint32() < 1) throw this.protocolError(`${path}: empty NAME reply`);
    return body.string();
  }

  errorOf(reply: Reply, path: string): Error {
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

  protocolError(message: string): ConnectionError {
    return brokenConnection(this.#label, message);
  }

  #takeId(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    return id;
  }

  #dispatch(packet: Buffer): void {
    const body = new PacketReader(packet);
    try {
      const type = body.byte();
      const id = body.uint32();
      const waiting = this.#pending.get(id);
      if (!waiting) {
        if (this.#orphans.delete(id) && type === Packet.HANDLE && !this.#failure) {
          const handle = body.bytes();
          this.#socket.write(new PacketWriter(Packet.CLOSE, 64).uint32(this.#takeId()).string(handle).finish());
        }
        return;
      }
      this.#pending.delete(id);
      let status: Reply['status'];
      if (type === Packet.STATUS) {
        const code = body.uint32();
        status = { code, message: body.remaining >= 4 ? body.string() : '' };
      }
      waiting.resolve({ type, body, status });
    } catch (error) {
      this.#fail(this.protocolError(String(error)));
      this.#socket.destroy();
    }
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const waiting of this.#pending.values()) waiting.reject(error);
    this.#pending.clear();
  }
}

export function statusOf(reply: Reply): { code: number; message: string } {
  return reply.status ?? { code: -1, message: '' };
}

function brokenConnection(label: string, message: string): ConnectionError {
  return new ConnectionError({ message: `${label}: ${message}`, backend: BACKEND, sent: true });
}
