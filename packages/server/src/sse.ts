import type { OperationEvent } from '@vmplane/core';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * A server-sent-events response written straight to the socket (the reply is hijacked, so Fastify
 * neither buffers nor serialises it). Every frame is built from JSON.stringify output, never by
 * hand, so quotes and newlines in messages cannot break a frame (go-pve-qemu's F2).
 */
export class SseStream {
  readonly #reply: FastifyReply;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(
    request: FastifyRequest,
    reply: FastifyReply,
    opts: { heartbeatMs?: number; headers?: Record<string, string> },
  ) {
    this.#reply = reply;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...opts.headers,
    });
    raw.flushHeaders();
    // A client that goes away only stops this stream: the operation it watched carries on, and a
    // reconnect with Last-Event-ID picks up where it left.
    // Removed again when the stream ends: a kept-alive socket serves many requests, and a listener
    // per request would pile up on it.
    const socket = request.raw.socket;
    const onClose = () => this.#finish();
    socket.once('close', onClose);
    this.#unlisten = () => socket.off('close', onClose);
    raw.once('close', onClose);
    if (opts.heartbeatMs && opts.heartbeatMs > 0) {
      this.#timer = setInterval(() => this.comment('heartbeat'), opts.heartbeatMs);
      this.#timer.unref();
    }
  }

  /** Aborts when the client disconnects or the stream ends. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Bytes written but not yet taken by the socket: how far behind the client is. */
  get buffered(): number {
    return this.#reply.raw.writableLength;
  }

  get closed(): boolean {
    return this.#ended;
  }

  /** One event: `id:` and `event:` lines when given, then `data:` with the JSON text of `data`. */
  send(data: unknown, opts: { id?: number | string; event?: string } = {}): void {
    let frame = '';
    if (opts.id !== undefined) frame += `id: ${oneLine(String(opts.id))}\n`;
    if (opts.event !== undefined) frame += `event: ${oneLine(opts.event)}\n`;
    // JSON text never holds a raw newline, so one `data:` line carries it whole.
    frame += `data: ${JSON.stringify(data)}\n\n`;
    this.#write(frame);
  }

  /** A comment line: ignored by every SSE parser, keeps proxies from timing the stream out. */
  comment(text: string): void {
    this.#write(`: ${oneLine(text)}\n\n`);
  }

  end(): void {
    if (this.#ended) return;
    this.#finish();
    this.#reply.raw.end();
  }

  #write(frame: string): void {
    if (this.#ended) return;
    this.#reply.raw.write(frame);
  }

  #unlisten: () => void = () => {};

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#unlisten();
    this.#abort.abort();
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** `Last-Event-ID` as the sequence number to resume after (0: from the start). */
export function lastEventId(request: FastifyRequest, query?: unknown): number {
  const header = request.headers['last-event-id'];
  const fromQuery = (query as { last_event_id?: unknown } | undefined)?.last_event_id;
  const raw = typeof header === 'string' ? header : typeof fromQuery === 'string' ? fromQuery : undefined;
  if (raw === undefined) return 0;
  const n = Number(raw.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** go-pve-qemu's event: `step`, `status`, `message` in that order, then `vm_id` and `ip` once known. */
export function goPveQemuEvent(event: OperationEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { step: event.step, status: event.status, message: event.message };
  if (event.vmId !== undefined) out.vm_id = event.vmId;
  if (event.ip !== undefined) out.ip = event.ip;
  return out;
}

/** go-pve-qemu's last frame, which its clients wait for: `event: close` with `{}`. */
export function sendClose(sse: SseStream): void {
  sse.send({}, { event: 'close' });
  sse.end();
}
