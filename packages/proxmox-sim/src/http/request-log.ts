/** What the simulator keeps of the requests it served: counts, entries and schema violations. */

/** The JSON type of a parameter's value as received (form fields are strings). */
export type ParamType = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'null';

/** A request that failed schema validation, or hit an unknown path or method. */
export interface Violation {
  method: string;
  path: string;
  template: string | undefined;
  /** PVE's message per parameter, with the caller's values replaced by `***`. */
  errors: Record<string, string>;
  /** The names of the parameters the request carried and the type of each; never their values. */
  params: Record<string, ParamType>;
}

export interface RequestEntry {
  method: string;
  path: string;
  template: string | undefined;
  status: number;
  /** Media type of the request body (`application/json`, no parameters); absent without one. */
  contentType?: string;
  /**
   * Names of the parameters the request carried in its query string and body (sorted; path
   * parameters left out). Never their values. Absent when the request failed before parsing.
   */
  params?: string[];
  /** Simulator clock time (ms) at which the request arrived. */
  at?: number;
}

export function paramTypes(raw: Record<string, unknown>): Record<string, ParamType> {
  const out: Record<string, ParamType> = {};
  for (const key of Object.keys(raw).sort()) {
    const v = raw[key];
    out[key] =
      v === null || v === undefined
        ? 'null'
        : Array.isArray(v)
          ? 'array'
          : typeof v === 'object'
            ? 'object'
            : typeof v === 'number' || typeof v === 'bigint'
              ? 'number'
              : typeof v === 'boolean'
                ? 'boolean'
                : 'string';
  }
  return out;
}

/** Counts of requests, per `METHOD /template`, plus the last entries. */
export class RequestLog {
  total = 0;
  readonly byRoute = new Map<string, number>();
  readonly entries: RequestEntry[] = [];
  private readonly keep = 10_000;

  /** @internal */
  record(e: RequestEntry): void {
    this.total++;
    const key = `${e.method} ${e.template ?? e.path}`;
    this.byRoute.set(key, (this.byRoute.get(key) ?? 0) + 1);
    this.entries.push(e);
    if (this.entries.length > this.keep) this.entries.splice(0, this.entries.length - this.keep);
  }

  /** Requests seen, optionally only for one method and/or path template (`/nodes/{node}/qemu`). */
  count(method?: string, template?: string): number {
    if (method === undefined && template === undefined) return this.total;
    let n = 0;
    for (const [key, c] of this.byRoute) {
      const [m, t] = key.split(' ', 2);
      if ((method === undefined || m === method.toUpperCase()) && (template === undefined || t === template)) n += c;
    }
    return n;
  }

  reset(): void {
    this.total = 0;
    this.byRoute.clear();
    this.entries.length = 0;
  }
}
