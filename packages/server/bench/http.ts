import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with `Date.parse`). */
export const wallNow = () => performance.timeOrigin + performance.now();

export interface JsonReply {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One JSON request with a bearer token and a deadline; the body parsed when it is JSON. */
export async function call(
  method: string,
  url: string,
  token: string,
  opts: { body?: unknown; timeoutMs?: number } = {},
): Promise<JsonReply> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // a text answer (go-pve-qemu's errors): kept as text
  }
  return { status: res.status, headers: res.headers, body };
}

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  /** When the chunk that completed the frame arrived (wallNow). */
  receivedAt: number;
}

export interface SseResult {
  status: number;
  headers: IncomingHttpHeaders;
  frames: SseFrame[];
  /** Whether the server ended the response (rather than our deadline or an error). */
  ended: boolean;
}

/**
 * An SSE request on a connection of its own (no agent: 100 subscribers are 100 sockets). Frames
 * are parsed as they arrive, each stamped with its arrival time; `onOpen` runs when the response
 * head is in. Ends when the server ends the response, or at `timeoutMs` (then `ended` is false).
 */
export function sse(
  url: string,
  token: string,
  opts: {
    method?: 'GET' | 'POST';
    body?: unknown;
    timeoutMs: number;
    onOpen?: (status: number) => void;
    onFrame?: (frame: SseFrame) => void;
  },
): Promise<SseResult> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const frames: SseFrame[] = [];
    let settled = false;
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      opts.onOpen?.(res.statusCode ?? 0);
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        const receivedAt = wallNow();
        buffer += chunk;
        for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
          const raw = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const frame: SseFrame = { receivedAt };
          let comment = true;
          for (const line of raw.split('\n')) {
            if (line.startsWith(':')) continue;
            comment = false;
            if (line.startsWith('id: ')) frame.id = line.slice(4);
            else if (line.startsWith('event: ')) frame.event = line.slice(7);
            else if (line.startsWith('data: ')) frame.data = line.slice(6);
          }
          if (comment) continue;
          frames.push(frame);
          opts.onFrame?.(frame);
        }
      });
      res.on('end', () => finish(true));
      res.on('error', (error) => fail(error));
      const finish = (ended: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, frames, ended });
      };
      // Our deadline: whatever came is returned, marked as not ended by the server.
      timeoutFinish = () => {
        finish(false);
        req.destroy();
      };
    });
    let timeoutFinish: (() => void) | undefined;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    };
    const timer = setTimeout(() => {
      if (timeoutFinish) timeoutFinish();
      else {
        req.destroy();
        fail(new Error(`no answer from ${url} within ${opts.timeoutMs} ms`));
      }
    }, opts.timeoutMs);
    req.on('error', fail);
    req.end(payload);
  });
}
