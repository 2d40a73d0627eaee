/**
 * Just enough HTTP/1.1 to find where each exchange on a connection begins and ends, from the bytes
 * that pass through a proxy: request and response heads, bodies by Content-Length or chunked
 * encoding (or until the connection closes), and upgrades (101), after which the connection is a
 * tunnel whose last byte ends the exchange. Bodies are skipped by count, never copied or scanned,
 * so that timing a 256 MiB transfer costs the proxy next to nothing beyond forwarding it.
 */

/** One request and its answer, as seen at the proxy (times: epoch ms, sub-millisecond). */
export interface Exchange {
  /** The proxy's connection number (one per accepted client connection). */
  conn: number;
  method: string;
  /** Path and query. */
  target: string;
  status: number;
  /** First byte of the request reached the proxy. */
  start: number;
  /** Last byte of the request. */
  requestEnd: number;
  /** First byte of the answer. */
  responseStart: number;
  /** Last byte of the answer; of a tunnel, its last byte either way. */
  end: number;
  requestBytes: number;
  responseBytes: number;
  /** Became a tunnel (101 Switching Protocols: websockets, SFTP). */
  upgraded: boolean;
  /** The answer was seen whole (or the tunnel closed). */
  complete: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
/** A head longer than this is not HTTP we understand: the connection is then only forwarded. */
const MAX_HEAD = 64 * 1024;

interface Head {
  firstLine: string;
  headers: Map<string, string>;
  bytes: number;
}

/** Collects a message head across chunks; answers how many bytes of `chunk` it used. */
class HeadReader {
  #parts: Buffer[] = [];
  #length = 0;
  head: Head | undefined;
  failed = false;

  feed(chunk: Buffer, offset: number): number {
    // Only the head's bytes are kept: the search looks at what is held plus at most MAX_HEAD more.
    const window = chunk.subarray(offset, offset + MAX_HEAD);
    const held = this.#length ? Buffer.concat([...this.#parts, window]) : window;
    const at = held.indexOf(HEAD_END, Math.max(0, this.#length - 3));
    if (at < 0) {
      if (held.length >= MAX_HEAD) this.failed = true;
      this.#parts = [Buffer.from(held)];
      this.#length = held.length;
      return window.length;
    }
    const text = held.subarray(0, at).toString('latin1');
    const [firstLine = '', ...lines] = text.split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.head = { firstLine, headers, bytes: at + 4 };
    const used = at + 4 - this.#length;
    this.#parts = [];
    this.#length = 0;
    return used;
  }
}

type BodyMode = { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'none' };

/** Skips a body by its framing; `done` once it ended. */
class BodyReader {
  done = false;
  #mode: BodyMode;
  /** Chunked: 'size' line, 'data' of #left bytes, its trailing CRLF, or the 'trailer' lines. */
  #state: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size';
  #left = 0;
  #line = '';

  constructor(mode: BodyMode) {
    this.#mode = mode;
    if (mode.kind === 'none' || (mode.kind === 'length' && mode.left === 0)) this.done = true;
  }

  /** Answers how many bytes of `chunk` from `offset` belong to the body. */
  feed(chunk: Buffer, offset: number): number {
    const mode = this.#mode;
    if (this.done) return 0;
    if (mode.kind === 'close') return chunk.length - offset;
    if (mode.kind === 'length') {
      const take = Math.min(mode.left, chunk.length - offset);
      mode.left -= take;
      if (mode.left === 0) this.done = true;
      return take;
    }
    if (mode.kind === 'none') return 0;
    let at = offset;
    while (at < chunk.length && !this.done) {
      if (this.#state === 'data') {
        const take = Math.min(this.#left, chunk.length - at);
        this.#left -= take;
        at += take;
        if (this.#left === 0) this.#state = 'data-crlf';
        continue;
      }
      // A line: the chunk size, the CRLF after the data, or a trailer line.
      const nl = chunk.indexOf(CRLF[1] as number, at);
      const end = nl < 0 ? chunk.length : nl + 1;
      this.#line += chunk.subarray(at, end).toString('latin1');
      at = end;
      if (nl < 0) continue;
      const line = this.#line.replace(/\r?\n$/, '');
      this.#line = '';
      if (this.#state === 'data-crlf') this.#state = 'size';
      else if (this.#state === 'size') {
        const size = Number.parseInt(line.split(';')[0] ?? '', 16);
        if (!Number.isFinite(size)) {
          // Not chunked encoding after all: the rest of the connection is this body.
          this.#mode = { kind: 'close' };
          return chunk.length - offset;
        }
        if (size === 0) this.#state = 'trailer';
        else {
          this.#left = size;
          this.#state = 'data';
        }
      } else if (line === '') this.done = true;
    }
    return at - offset;
  }
}

function bodyMode(headers: Map<string, string>, fallback: 'none' | 'close'): BodyMode {
  if ((headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) return { kind: 'chunked' };
  const length = headers.get('content-length');
  if (length !== undefined && /^\d+$/.test(length)) return { kind: 'length', left: Number(length) };
  return { kind: fallback };
}

/**
 * The exchanges of one proxied connection. Feed it the bytes each way as they pass (with the time
 * they arrived); it reports each exchange when its answer ended. Clients here do not pipeline,
 * but requests queue in order all the same.
 */
export class ConnectionTimer {
  readonly #conn: number;
  readonly #now: () => number;
  readonly #onExchange: (x: Exchange) => void;
  /** Requests sent whose answers have not ended yet, oldest first. */
  readonly #waiting: Exchange[] = [];
  #request: { x: Exchange; head: HeadReader; body?: BodyReader } | undefined;
  #response: { head: HeadReader; body?: BodyReader; x?: Exchange } | undefined;
  #tunnel: Exchange | undefined;
  /** Not HTTP we understand any more: bytes are forwarded, not timed. */
  #lost = false;

  constructor(conn: number, now: () => number, onExchange: (x: Exchange) => void) {
    this.#conn = conn;
    this.#now = now;
    this.#onExchange = onExchange;
  }

  /** The exchanges still open (a tunnel, an answer not yet whole), as they stand. */
  open(): Exchange[] {
    return [...(this.#tunnel ? [this.#tunnel] : []), ...this.#waiting];
  }

  fromClient(chunk: Buffer): void {
    const t = this.#now();
    if (this.#tunnel) {
      this.#tunnel.requestBytes += chunk.length;
      this.#tunnel.end = t;
      return;
    }
    if (this.#lost) return;
    let at = 0;
    while (at < chunk.length) {
      if (!this.#request) {
        const x: Exchange = {
          conn: this.#conn,
          method: '',
          target: '',
          status: 0,
          start: t,
          requestEnd: t,
          responseStart: 0,
          end: 0,
          requestBytes: 0,
          responseBytes: 0,
          upgraded: false,
          complete: false,
        };
        this.#request = { x, head: new HeadReader() };
      }
      const r = this.#request;
      const before = at;
      if (!r.body) {
        at += r.head.feed(chunk, at);
        if (r.head.failed) {
          this.#lost = true;
          return;
        }
        if (!r.head.head) {
          r.x.requestBytes += at - before;
          continue;
        }
        const [method = '', target = ''] = r.head.head.firstLine.split(' ');
        r.x.method = method;
        r.x.target = target;
        r.body = new BodyReader(bodyMode(r.head.head.headers, 'none'));
      }
      at += r.body.feed(chunk, at);
      r.x.requestBytes += at - before;
      r.x.requestEnd = t;
      if (r.body.done) {
        // An answer that came before the request ended (an early error) has been reported already.
        if (!r.x.complete) this.#waiting.push(r.x);
        this.#request = undefined;
      }
    }
  }

  fromServer(chunk: Buffer): void {
    const t = this.#now();
    if (this.#tunnel) {
      this.#tunnel.responseBytes += chunk.length;
      this.#tunnel.end = t;
      return;
    }
    if (this.#lost) return;
    let at = 0;
    while (at < chunk.length) {
      // An answer may begin before its request ended (an early error): it is the oldest request's.
      const x = this.#waiting[0] ?? this.#request?.x;
      if (!x) {
        this.#lost = true;
        return;
      }
      this.#response ??= { head: new HeadReader() };
      const r = this.#response;
      const before = at;
      if (!r.body) {
        at += r.head.feed(chunk, at);
        if (x.responseStart === 0) x.responseStart = t;
        if (r.head.failed) {
          this.#lost = true;
          return;
        }
        if (!r.head.head) {
          x.responseBytes += at - before;
          continue;
        }
        const status = Number(r.head.head.firstLine.split(' ')[1]);
        x.status = status;
        if (status === 101) {
          x.responseBytes += at - before;
          x.upgraded = true;
          x.end = t;
          this.#waiting.shift();
          this.#tunnel = x;
          this.#response = undefined;
          // What follows in this chunk is already the tunnel's.
          x.responseBytes += chunk.length - at;
          return;
        }
        if (status >= 100 && status < 200) {
          // An interim answer (100 Continue): the final one follows.
          x.responseBytes += at - before;
          this.#response = undefined;
          continue;
        }
        const bodiless = x.method === 'HEAD' || status === 204 || status === 304;
        r.body = new BodyReader(bodiless ? { kind: 'none' } : bodyMode(r.head.head.headers, 'close'));
      }
      at += r.body.feed(chunk, at);
      x.responseBytes += at - before;
      x.end = t;
      if (r.body.done) {
        x.complete = true;
        if (this.#waiting[0] === x) this.#waiting.shift();
        this.#response = undefined;
        this.#onExchange(x);
      }
    }
  }

  /** The connection closed: a tunnel or an answer read until the close ends here. */
  closed(): void {
    const t = this.#now();
    const ending = this.#tunnel ?? this.#waiting[0];
    if (ending && (ending === this.#tunnel || ending.responseStart > 0)) {
      if (ending.end === 0) ending.end = t;
      ending.complete = true;
      if (!this.#tunnel) this.#waiting.shift();
      this.#onExchange(ending);
    }
    this.#tunnel = undefined;
  }
}
