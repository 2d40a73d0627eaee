import { type FormatCheck, problem, type Show } from '../problem.js';

/** A check that the whole value matches `re`, failing with `message`. */
export const matching =
  (re: RegExp, message: (show: Show, value: string) => string): FormatCheck =>
  (v) =>
    re.test(v) ? undefined : problem((show) => message(show, v));

/** A check from a predicate. */
export const when =
  (ok: (v: string) => boolean, message: (show: Show, value: string) => string): FormatCheck =>
  (v) =>
    ok(v) ? undefined : problem((show) => message(show, v));

/** The first failing check, or none. */
export const all =
  (...checks: FormatCheck[]): FormatCheck =>
  (v) => {
    for (const c of checks) {
      const p = c(v);
      if (p) return p;
    }
    return undefined;
  };

/**
 * PVE::Tools::split_list: NUL-separated when the value has a NUL (repeated form fields), else
 * split on commas, semicolons and white space; empty items are dropped.
 */
export function splitList(value: string): string[] {
  if (value.includes('\0')) return value.split('\0');
  return value
    .replace(/[,;]/g, ' ')
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '');
}
