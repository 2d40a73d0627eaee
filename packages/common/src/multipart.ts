import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';

/** Bytes of a file part, read once, with their length when known. */
export interface PartData {
  size: number | undefined;
  chunks(): AsyncIterable<Buffer>;
}

/** One part of a multipart/form-data body: a plain field, or a file when it has a filename. */
export interface FormPart {
  name: string;
  /** Present for file parts. */
  filename?: string | undefined;
  /** Defaults to application/octet-stream for files; plain fields have none. */
  contentType?: string | undefined;
  data: string | Buffer | PartData;
  /** Called when this part starts going out (progress by part). */
  onStart?: (() => void) | undefined;
}

export interface MultipartBody {
  contentType: string;
  /** Total length when every part's size is known, so that Content-Length can be sent. */
  length: number | undefined;
  /** The body, produced lazily: parts are read one after the other, never buffered whole. */
  chunks: AsyncIterable<Buffer>;
}

const CRLF = '\r\n';

/**
 * A name or filename for a Content-Disposition header. CR, LF and NUL would end or corrupt the
 * header line, so they are refused rather than silently changed.
 */
function quoted(text: string, argument: string, backend: string | undefined): string {
  if (typeof text !== 'string' || /[\r\n\0]/.test(text)) {
    throw new InvalidArgumentError({
      message: `${argument} must be a string without CR, LF or NUL: ${JSON.stringify(String(text).slice(0, 80))}`,
      argument,
      backend,
    });
  }
  return `"${text.replace(/(["\\])/g, '\\$1')}"`;
}

/** A multipart/form-data body (RFC 7578) laid out as Go's mime/multipart writes it. */
export function multipartBody(parts: readonly FormPart[], backend?: string): MultipartBody {
  const boundary = `vmplane${randomBytes(16).toString('hex')}`;
  const heads = parts.map((p, i) => {
    let head = `${i === 0 ? '' : CRLF}--${boundary}${CRLF}Content-Disposition: form-data; name=${quoted(p.name, 'name', backend)}`;
    if (p.filename !== undefined) head += `; filename=${quoted(p.filename, 'filename', backend)}`;
    head += CRLF;
    const type = p.contentType ?? (p.filename !== undefined ? 'application/octet-stream' : undefined);
    if (type !== undefined) {
      if (/[\r\n\0]/.test(type)) {
        throw new InvalidArgumentError({ message: 'contentType must be one line', argument: 'contentType', backend });
      }
      head += `Content-Type: ${type}${CRLF}`;
    }
    return Buffer.from(`${head}${CRLF}`);
  });
  const tail = Buffer.from(`${CRLF}--${boundary}--${CRLF}`);
  const sizeOf = (d: FormPart['data']) =>
    typeof d === 'string' ? Buffer.byteLength(d) : Buffer.isBuffer(d) ? d.length : d.size;
  let length: number | undefined = tail.length;
  parts.forEach((p, i) => {
    const size = sizeOf(p.data);
    length = length === undefined || size === undefined ? undefined : length + (heads[i]?.length ?? 0) + size;
  });
  async function* chunks(): AsyncGenerator<Buffer> {
    for (const [i, p] of parts.entries()) {
      yield heads[i] ?? Buffer.alloc(0);
      p.onStart?.();
      if (typeof p.data === 'string') yield Buffer.from(p.data);
      else if (Buffer.isBuffer(p.data)) yield p.data;
      else yield* p.data.chunks();
    }
    yield tail;
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, length, chunks: chunks() };
}
