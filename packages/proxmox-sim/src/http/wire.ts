/** The HTTP side of PVE's API server: reading bodies and parameters, and writing its envelopes. */
import type * as http from 'node:http';
import type { UploadedFile } from '../context.js';
import { PveError } from '../state.js';

const JSON_HEADERS = {
  'Content-Type': 'application/json;charset=UTF-8',
  Server: 'pve-api-daemon/3.0',
  'Cache-Control': 'max-age=0',
  Pragma: 'no-cache',
  Expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
};

/** The status line carries the first line of the message, in latin-1 safe characters. */
function reason(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 200) || 'Error';
}

/** Writes an answer; the ExtJS flavour always answers 200 and says the outcome in the body. */
export function send(
  res: http.ServerResponse,
  status: number,
  message: string,
  payload: Record<string, unknown>,
  extjs: boolean,
): void {
  const body = extjs
    ? JSON.stringify({ ...payload, success: status === 200 ? 1 : 0, ...(status === 200 ? {} : { status }) })
    : JSON.stringify(payload);
  res.writeHead(extjs ? 200 : status, reason(message), { ...JSON_HEADERS, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendError(
  res: http.ServerResponse,
  status: number,
  message: string,
  extjs: boolean,
  errors?: Record<string, string>,
): void {
  const payload: Record<string, unknown> = { data: null, message: message.endsWith('\n') ? message : `${message}\n` };
  if (errors) payload.errors = errors;
  send(res, status, message, payload, extjs);
}

/**
 * Adds one decoded field. A repeated field is joined with NUL, as PVE's decode_urlencoded does:
 * array parameters split it again, and a scalar parameter sees one string.
 */
function addParam(target: Record<string, unknown>, key: string, value: string): void {
  const prev = target[key];
  target[key] = prev === undefined ? value : `${String(prev)}\0${value}`;
}

export function parseQuery(qs: string, target: Record<string, unknown>): void {
  if (qs === '') return;
  for (const [k, v] of new URLSearchParams(qs)) addParam(target, k, v);
}

export function parseMultipart(
  body: Buffer,
  boundary: string,
  target: Record<string, unknown>,
  files: UploadedFile[],
): void {
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    const part = body.subarray(start + 2, next - 2); // skip CRLF after delimiter and before the next
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd >= 0) {
      const headers = part.subarray(0, headerEnd).toString('utf8');
      const data = part.subarray(headerEnd + 4);
      const name = /name="([^"]*)"/i.exec(headers)?.[1];
      const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
      if (name !== undefined) {
        if (filename !== undefined) {
          files.push({ field: name, filename, data });
          addParam(target, name, filename);
        } else addParam(target, name, data.toString('utf8'));
      }
    }
    pos = next;
  }
}

/** The parameters of a body: JSON (an object's members as they are), multipart or form-encoded. */
export function parseBody(
  body: Buffer,
  contentTypeHeader: string,
  target: Record<string, unknown>,
  files: UploadedFile[],
): void {
  if (contentTypeHeader.includes('application/json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new PveError(400, 'malformed JSON string');
    }
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(target, parsed);
  } else if (contentTypeHeader.includes('multipart/form-data')) {
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentTypeHeader);
    parseMultipart(body, (boundary?.[1] ?? boundary?.[2] ?? '').trim(), target, files);
  } else parseQuery(body.toString('utf8'), target);
}

export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new PveError(413, 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function cookieTicket(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === 'PVEAuthCookie') {
      const v = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(v);
      } catch {
        return v;
      }
    }
  }
  return undefined;
}
