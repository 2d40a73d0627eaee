/**
 * The read cache. Entries carry tags (`cluster`, `node:pve1`, `guest:100`) so that a change to a
 * guest can drop what was read about it without clearing everything else.
 */
export interface ProxmoxCache {
  get(key: string): unknown;
  set(key: string, value: unknown, ttlMs: number, tags: readonly string[]): void;
  delete(key: string): void;
  /** Drops every entry carrying the tag. */
  invalidate(tag: string): void;
  clear(): void;
}

interface Entry {
  value: unknown;
  expires: number;
  tags: readonly string[];
}

export interface LruCacheOptions {
  /** Entries kept before the least recently used is evicted (default 1000). */
  maxEntries?: number;
  /** Clock in ms, injectable for tests. */
  now?: () => number;
}

/** In-memory LRU with per-entry TTLs: a Map keeps insertion order, and a hit re-inserts the key. */
export class LruCache implements ProxmoxCache {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: LruCacheOptions = {}) {
    this.#max = Math.max(1, opts.maxEntries ?? 1000);
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): unknown {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: unknown, ttlMs: number, tags: readonly string[] = []): void {
    if (ttlMs <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.#now() + ttlMs, tags });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  invalidate(tag: string): void {
    for (const [key, entry] of this.#entries) if (entry.tags.includes(tag)) this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** A cache that keeps nothing: pass it to turn caching off. */
export const noCache: ProxmoxCache = {
  get: () => undefined,
  set() {},
  delete() {},
  invalidate() {},
  clear() {},
};

export const cacheTags = {
  cluster: 'cluster',
  node: (node: string) => `node:${node}`,
  guest: (vmid: number) => `guest:${vmid}`,
};
