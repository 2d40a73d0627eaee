import { type HttpBody, InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from './errors.js';

export function isBytes(value: unknown): value is Uint8Array | ArrayBuffer {
  return value instanceof Uint8Array || value instanceof ArrayBuffer;
}

function isStream(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { pipe?: unknown; on?: unknown };
  return (typeof v.pipe === 'function' && typeof v.on === 'function') || Symbol.asyncIterator in value;
}

/** A raw body: bytes, text or a stream; anything else is refused before a request exists. */
export function checkBody(body: unknown, argument: string): HttpBody {
  if (typeof body === 'string' || isBytes(body) || isStream(body)) return body as HttpBody;
  throw new InvalidArgumentError({
    message: `${argument} must be bytes (Buffer, Uint8Array, ArrayBuffer), a string or a stream, not ${
      body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body
    }`,
    argument,
    backend: BACKEND,
  });
}

export function jsonBody(body: unknown): string {
  try {
    const text = JSON.stringify(body);
    if (typeof text === 'string') return text;
  } catch (error) {
    throw new InvalidArgumentError({
      message: `The request body cannot be sent as JSON: ${(error as Error).message}`,
      argument: 'body',
      backend: BACKEND,
      cause: error,
    });
  }
  throw new InvalidArgumentError({ message: 'The request body is not JSON', argument: 'body', backend: BACKEND });
}
