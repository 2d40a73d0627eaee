import { type CallOptions, InvalidArgumentError, callOptions as pick } from '@vmplane/common';
import { BACKEND } from './errors.js';
import type { ReadOptions } from './transport.js';

/**
 * A caller's option bag, checked: absent is `{}`, anything but an object (`null`, a number) is an
 * InvalidArgumentError instead of a TypeError from reading a field of it.
 */
export function options<T extends object>(opts: T | null | undefined, argument = 'options'): T {
  if (opts === undefined) return {} as T;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new InvalidArgumentError({ message: `${argument} must be an object`, argument, backend: BACKEND });
  }
  return opts;
}

/**
 * The call options picked from a caller's bag: `signal` and `timeout`, nothing else, so that no
 * other key of the bag (a stray `params` or `cache`) travels into the request.
 */
export function callOptions(opts: CallOptions | undefined): CallOptions {
  return pick(options(opts));
}

/** The options of a read, picked the same way: `signal`, `timeout` and `fresh`. */
export function readOptions(opts: ReadOptions | undefined): ReadOptions {
  const o = options(opts);
  const out: ReadOptions = pick(o);
  if (o.fresh !== undefined) out.fresh = o.fresh;
  return out;
}
