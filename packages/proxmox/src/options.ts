import { callOptions } from '@vmplane/common';
import type { ReadOptions } from './transport.js';

/**
 * The options of a read, picked from a caller's bag: `signal`, `timeout` and `fresh`, nothing
 * else, so that no other key of the bag (a stray `params` or `cache`) travels into the request.
 */
export function readOptions(opts: ReadOptions | undefined): ReadOptions {
  const out: ReadOptions = callOptions(opts);
  if (opts?.fresh !== undefined) out.fresh = opts.fresh;
  return out;
}

export { callOptions };
