const ETAG = Symbol.for('vmplane.lxd.etag');

/** Remembers the ETag an object was read with, without it showing up in JSON or spreads. */
export function withEtag<T extends object>(value: T, etag: string | undefined): T {
  if (etag !== undefined && value && typeof value === 'object') {
    Object.defineProperty(value, ETAG, { value: etag, enumerable: false, configurable: true });
  }
  return value;
}

/** The ETag of an object returned by a `get`, to send back as If-Match on update. */
export function etagOf(value: object): string | undefined {
  return (value as { [ETAG]?: string })[ETAG];
}
