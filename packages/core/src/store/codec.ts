import { randomBytes } from 'node:crypto';
import { InvalidRequestError } from '../errors.js';

/** JSON columns are text in every database; these are the only places that read or write them. */
export function toJson(value: unknown, field: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new InvalidRequestError({ message: `${field} cannot be stored as JSON`, field, cause: error });
  }
  if (text === undefined) throw new InvalidRequestError({ message: `${field} cannot be stored as JSON`, field });
  return text;
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

export function fromJsonOrUndefined<T>(text: string | null): T | undefined {
  return text === null ? undefined : (JSON.parse(text) as T);
}

/** A plain object, as the request, result and payload columns require. */
export function checkObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidRequestError({ message: `${field} must be an object`, field });
  return value as Record<string, unknown>;
}

export function checkText(value: unknown, field: string, max = 256): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max)
    throw new InvalidRequestError({ message: `${field} must be a string of 1 to ${max} characters`, field });
  return value;
}

/**
 * Sets `target[key]` only for a present value: with exactOptionalPropertyTypes an optional field
 * is absent, never `undefined`, and a NULL column becomes no key at all.
 */
export function setOptional<T extends object, K extends keyof T>(
  target: T,
  key: K,
  value: Exclude<T[K], undefined> | null | undefined,
): void {
  if (value !== null && value !== undefined) target[key] = value;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
let lastRandom = 0n;

/**
 * A ULID: 48 bits of milliseconds and 80 random bits in Crockford base32, 26 characters that sort
 * by creation time. Within one millisecond the random part counts up, so ids made in one process
 * also sort in the order they were made.
 */
export function ulid(now: number = Date.now()): string {
  let time = Math.max(now, lastTime);
  let random: bigint;
  if (time === lastTime) {
    random = lastRandom + 1n;
    if (random >> 80n !== 0n) {
      time += 1;
      random = fresh();
    }
  } else {
    random = fresh();
  }
  lastTime = time;
  lastRandom = random;
  return encode(BigInt(time), 10) + encode(random, 16);
}

function fresh(): bigint {
  // One bit short of 80 leaves room to count up within the millisecond.
  return BigInt(`0x${randomBytes(10).toString('hex')}`) >> 1n;
}

function encode(value: bigint, length: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[Number(v & 31n)] + out;
    v >>= 5n;
  }
  return out;
}

/**
 * An iterable that can be walked again from the start: a transaction that runs a second time
 * (after a unique violation) must see the same candidates, and a generator only yields once.
 */
export function replayable<T>(source: Iterable<T>): Iterable<T> {
  const seen: T[] = [];
  let iterator: Iterator<T> | undefined;
  let done = false;
  return {
    *[Symbol.iterator]() {
      for (let i = 0; ; i++) {
        if (i < seen.length) {
          yield seen[i] as T;
          continue;
        }
        if (done) return;
        iterator ??= source[Symbol.iterator]();
        const next = iterator.next();
        if (next.done) {
          done = true;
          return;
        }
        seen.push(next.value);
        yield next.value;
      }
    },
  };
}
