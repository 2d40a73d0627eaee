/**
 * Server-sent events over fetch. The framing is eventsource-parser's (the spec's rules for `data:`,
 * `id:`, `event:`, comments and line ends, which are easy to get subtly wrong); this module adds
 * the two things the CLI needs around it: an async iterator over a response body, and resuming a
 * dropped stream with `Last-Event-ID`.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { ApiError } from './errors.js';

export type SseEvent = EventSourceMessage;

/** The events of one response body, in order, until it ends. Leaving the loop early cancels the body. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const queue: SseEvent[] = [];
  const parser = createParser({ onEvent: (event) => queue.push(event) });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      while (queue.length > 0) yield queue.shift() as SseEvent;
    }
    parser.feed(decoder.decode());
    while (queue.length > 0) yield queue.shift() as SseEvent;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export interface ResumeOptions {
  /** Opens the stream; `lastEventId` is set on every attempt after the first event was seen. */
  open(lastEventId: string | undefined, attempt: number): Promise<Response>;
  /** True for the event that ends the stream (go-pve-qemu's `event: close`). */
  isEnd(event: SseEvent): boolean;
  /** How many reconnections in a row without a new event before giving up. */
  maxRetries?: number;
  /** Told before each reconnection, so the user sees why the output paused. */
  onReconnect?(attempt: number, error: unknown): void;
  /** Waits between attempts; injectable so that tests need not sleep. */
  delay?(ms: number): Promise<void>;
}

/** Raised when the stream dropped and could not be resumed. */
export class StreamLostError extends Error {
  constructor(cause: unknown) {
    super(`the event stream was lost and could not be resumed (${cause instanceof Error ? cause.message : cause})`, {
      cause,
    });
    this.name = 'StreamLostError';
  }
}

/**
 * Every event of a stream that may drop: when the body ends or fails before the end event, it is
 * opened again with the id of the last event seen, so the server resumes after it from its journal.
 * An HTTP error answer (4xx, 5xx) is final and thrown as it is: reconnecting cannot fix it.
 */
export async function* resumableEvents(opts: ResumeOptions): AsyncGenerator<SseEvent> {
  const maxRetries = opts.maxRetries ?? 5;
  const delay = opts.delay ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let lastEventId: string | undefined;
  let failures = 0;
  for (let attempt = 0; ; attempt++) {
    let lastError: unknown;
    try {
      const response = await opts.open(lastEventId, attempt);
      if (!response.body) throw new Error('the answer has no body');
      for await (const event of readEvents(response.body)) {
        failures = 0;
        if (event.id !== undefined && event.id !== '') lastEventId = event.id;
        yield event;
        if (opts.isEnd(event)) return;
      }
      lastError = new Error('the server closed the stream before its end');
    } catch (error) {
      // An HTTP error answer is final, and so is our own abort: neither is a dropped connection.
      if (error instanceof ApiError || (error instanceof Error && error.name === 'AbortError')) throw error;
      lastError = error;
    }
    failures++;
    if (failures > maxRetries) throw new StreamLostError(lastError);
    opts.onReconnect?.(failures, lastError);
    await delay(Math.min(250 * 2 ** (failures - 1), 4000));
  }
}
