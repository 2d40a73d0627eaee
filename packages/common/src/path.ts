import { InvalidArgumentError } from './errors.js';

export type PathValue = string | number;

/**
 * Builds a URL path, percent-encoding each interpolated value as one segment.
 * Refuses empty values and the dot segments `.` and `..`, which would change the path's meaning.
 *
 *   path`/1.0/instances/${name}/snapshots/${snap}`
 */
export function path(strings: TemplateStringsArray, ...values: PathValue[]): string {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += encodeSegment(value) + (strings[i + 1] ?? '');
  });
  return out;
}

export function encodeSegment(value: PathValue): string {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || text === '' || text === '.' || text === '..') {
    throw new InvalidArgumentError({
      message: `Invalid path segment ${JSON.stringify(value)}`,
      argument: 'path',
    });
  }
  return encodeURIComponent(text);
}

export type QueryValue = string | number | boolean | undefined | null | readonly (string | number)[];

/** `?a=1&b=x` from an object, skipping undefined and null; '' when nothing is left. */
export function query(params: Readonly<Record<string, QueryValue>>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const v of value) search.append(key, String(v));
    else search.append(key, typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
