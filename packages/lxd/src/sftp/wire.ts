/**
 * SFTP version 3 (draft-ietf-secsh-filexfer-02), the dialect LXD's `/1.0/instances/{name}/sftp`
 * speaks after the HTTP upgrade: packets are `uint32 length, byte type, payload`.
 */

export const Packet = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

export const Status = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

export const OpenFlag = {
  READ: 0x01,
  WRITE: 0x02,
  APPEND: 0x04,
  CREAT: 0x08,
  TRUNC: 0x10,
  EXCL: 0x20,
} as const;

const ATTR_SIZE = 0x01;
const ATTR_UIDGID = 0x02;
const ATTR_PERMISSIONS = 0x04;
const ATTR_ACMODTIME = 0x08;
const ATTR_EXTENDED = 0x80000000;

/** A file's attributes: each present only when the server sent it. */
export interface SftpAttrs {
  size?: number;
  uid?: number;
  gid?: number;
  /** Type and permission bits, as st_mode. */
  mode?: number;
  /** Seconds since the epoch. */
  atime?: number;
  mtime?: number;
}

export type SftpFileType = 'file' | 'directory' | 'symlink' | 'other';

const S_IFMT = 0o170000;

export function fileTypeOf(mode: number | undefined): SftpFileType {
  switch ((mode ?? 0) & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

/** Builds one packet; the length prefix is written by `finish`. */
export class PacketWriter {
  private buf: Buffer;
  private at = 4;

  constructor(type: number, capacity = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, 16));
    this.byte(type);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  byte(v: number): this {
    this.room(1);
    this.buf[this.at++] = v;
    return this;
  }

  uint32(v: number): this {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.at);
    this.at += 4;
    return this;
  }

  uint64(v: number): this {
    this.room(8);
    this.buf.writeBigUInt64BE(BigInt(v), this.at);
    this.at += 8;
    return this;
  }

  string(v: string | Buffer): this {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.uint32(bytes.length);
    this.room(bytes.length);
    bytes.copy(this.buf, this.at);
    this.at += bytes.length;
    return this;
  }

  attrs(a: SftpAttrs): this {
    let flags = 0;
    if (a.size !== undefined) flags |= ATTR_SIZE;
    if (a.uid !== undefined || a.gid !== undefined) flags |= ATTR_UIDGID;
    if (a.mode !== undefined) flags |= ATTR_PERMISSIONS;
    if (a.atime !== undefined || a.mtime !== undefined) flags |= ATTR_ACMODTIME;
    this.uint32(flags);
    if (flags & ATTR_SIZE) this.uint64(a.size ?? 0);
    if (flags & ATTR_UIDGID) this.uint32(a.uid ?? 0).uint32(a.gid ?? 0);
    if (flags & ATTR_PERMISSIONS) this.uint32(a.mode ?? 0);
    if (flags & ATTR_ACMODTIME) this.uint32(a.atime ?? a.mtime ?? 0).uint32(a.mtime ?? a.atime ?? 0);
    return this;
  }

  finish(): Buffer {
    this.buf.writeUInt32BE(this.at - 4, 0);
    return this.buf.subarray(0, this.at);
  }
}

export class MalformedPacketError extends Error {}

/** Reads the fields of one packet's payload, refusing to run past its end. */
export class PacketReader {
  private at = 0;

  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw new MalformedPacketError('SFTP packet ends early');
  }

  get remaining(): number {
    return this.buf.length - this.at;
  }

  byte(): number {
    this.need(1);
    return this.buf[this.at++] as number;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  uint64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    return Number(v);
  }

  bytes(): Buffer {
    const n = this.uint32();
    this.need(n);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  attrs(): SftpAttrs {
    const flags = this.uint32();
    const a: SftpAttrs = {};
    if (flags & ATTR_SIZE) a.size = this.uint64();
    if (flags & ATTR_UIDGID) {
      a.uid = this.uint32();
      a.gid = this.uint32();
    }
    if (flags & ATTR_PERMISSIONS) a.mode = this.uint32();
    if (flags & ATTR_ACMODTIME) {
      a.atime = this.uint32();
      a.mtime = this.uint32();
    }
    if (flags & ATTR_EXTENDED) {
      const count = this.uint32();
      for (let i = 0; i < count; i++) {
        this.bytes();
        this.bytes();
      }
    }
    return a;
  }
}

/**
 * Splits a byte stream into packets. Returns the packets found and keeps the rest; a length past
 * `maxLength` means the peer is not speaking SFTP.
 */
export class PacketSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLength = 1 << 24) {}

  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    while (this.pendingBytes >= 4) {
      const head = this.peek(4);
      const length = head.readUInt32BE(0);
      if (length > this.maxLength) throw new MalformedPacketError(`SFTP packet of ${length} bytes`);
      if (this.pendingBytes < 4 + length) break;
      out.push(this.take(4 + length).subarray(4));
    }
    return out;
  }

  private peek(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    return first.length >= n ? first : this.copyOut(n, false);
  }

  private take(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length > n) {
      this.pending[0] = first.subarray(n);
      this.pendingBytes -= n;
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.pending.shift();
      this.pendingBytes -= n;
      return first;
    }
    return this.copyOut(n, true);
  }

  /** Copies exactly n bytes out of the pending chunks: a packet that spans reads costs its own size. */
  private copyOut(n: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const chunk = this.pending[i] as Buffer;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (consume) {
        if (used === chunk.length) this.pending.shift();
        else this.pending[0] = chunk.subarray(used);
      } else i++;
    }
    if (consume) this.pendingBytes -= n;
    return out;
  }
}
