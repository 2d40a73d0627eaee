import { ServerError } from '@vmplane/common';
import { BACKEND } from '../errors.js';

const CRLF = '\r\n';

/** The boundary of a `multipart/...; boundary=...` content type, or undefined if it is not multipart. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\//i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** One part of a parsed multipart body; `body` must be read to its end before asking for the next part. */
export interface Part {
  name: string | undefined;
  filename: string | undefined;
  headers: Record<string, string>;
  body: AsyncGenerator<Buffer>;
}

function malformed(why: string): ServerError {
  return new ServerError({ status: 502, message: `Malformed multipart answer: ${why}`, backend: BACKEND });
}

const MAX_HEADER = 16 * 1024;

/**
 * Streams the parts of a multipart body without holding more than one chunk plus a delimiter in
 * memory. Leaving early (return/throw) releases the source.
 */
export async function* multipartParts(source: AsyncIterable<Buffer>, boundary: string): AsyncGenerator<Part> {
  const it = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const r = await it.next();
    if (r.done) {
      ended = true;
      return false;
    }
    buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
    return true;
  };
  /** Yields bytes up to `delim`, consuming it. */
  async function* until(delim: Buffer, what: string): AsyncGenerator<Buffer> {
    for (;;) {
      const at = buf.indexOf(delim);
      if (at >= 0) {
        if (at > 0) yield buf.subarray(0, at);
        buf = buf.subarray(at + delim.length);
        return;
      }
      // Keep a tail that could be the start of the delimiter.
      const safe = buf.length - (delim.length - 1);
      if (safe > 0) {
        yield buf.subarray(0, safe);
        buf = buf.subarray(safe);
      }
      if (!(await more())) throw malformed(`no end of ${what}`);
    }
  }
  const need = async (n: number) => {
    while (buf.length < n) if (!(await more())) throw malformed('truncated');
  };
  try {
    // The preamble (usually empty) ends at the first delimiter.
    for await (const _ of until(Buffer.from(`--${boundary}`), 'preamble')) {
    }
    const delimiter = Buffer.from(`\r\n--${boundary}`);
    for (;;) {
      await need(2);
      if (buf.subarray(0, 2).toString() === '--') return; // close delimiter
      if (buf.subarray(0, 2).toString() !== CRLF) throw malformed('bad delimiter');
      buf = buf.subarray(2);
      const headerChunks: Buffer[] = [];
      let headerSize = 0;
      for await (const c of until(Buffer.from('\r\n\r\n'), 'part headers')) {
        headerSize += c.length;
        if (headerSize > MAX_HEADER) throw malformed('part headers too long');
        headerChunks.push(c);
      }
      const headers: Record<string, string> = {};
      for (const line of Buffer.concat(headerChunks).toString('utf8').split(CRLF)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const disposition = headers['content-disposition'] ?? '';
      const body = until(delimiter, 'part');
      yield {
        name: dispositionParam(disposition, 'name'),
        filename: dispositionParam(disposition, 'filename'),
        headers,
        body,
      };
      // Whatever the reader left of this part is skipped.
      for await (const _ of body) {
      }
    }
  } finally {
    await it.return?.();
  }
}

function dispositionParam(disposition: string, key: string): string | undefined {
  const m = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${key}=([^;\\s]+)`, 'i').exec(disposition);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2];
}
