import type { PveApiSchema } from '../apidoc.js';
import type { FormatCheck } from '../problem.js';
import { CALENDAR_FORMATS } from './calendar.js';
import { splitList } from './common.js';
import { FIREWALL_FORMATS } from './firewall.js';
import { ID_FORMATS } from './ids.js';
import { NET_FORMATS } from './net.js';
import { BORROWED_HASH_FORMATS, HASH_FORMATS, type HashFormat } from './property-strings.js';

export type { HashFormat } from './property-strings.js';

/** A named format: a check of the whole string, or a property string's keys. */
export type ResolvedFormat = { kind: 'check'; check: FormatCheck } | { kind: 'hash'; format: HashFormat };

const CHECKS: Record<string, FormatCheck> = {
  ...NET_FORMATS,
  ...ID_FORMATS,
  ...FIREWALL_FORMATS,
  ...CALENDAR_FORMATS,
};

/**
 * The named formats of one schema: PVE's verifiers, the property-string formats, and the
 * suffixes PVE derives (`X-list`: PVE::Tools::split_list, each item an X; `X-opt`: X or empty).
 */
export class FormatRegistry {
  private readonly borrowed = new Map<string, HashFormat>();
  private readonly cache = new Map<string, ResolvedFormat | undefined>();
  /** Format names the schema uses that the simulator does not know (they are not checked). */
  readonly unknown = new Set<string>();

  constructor(api?: PveApiSchema) {
    for (const [name, at] of Object.entries(BORROWED_HASH_FORMATS)) {
      const format = api?.paths[at.path]?.[at.method]?.parameters.properties?.[at.param]?.format;
      if (format !== undefined && typeof format === 'object') this.borrowed.set(name, { keys: format });
    }
  }

  resolve(name: string): ResolvedFormat | undefined {
    if (this.cache.has(name)) return this.cache.get(name);
    const found = this.lookup(name);
    if (!found) this.unknown.add(name);
    this.cache.set(name, found);
    return found;
  }

  private base(name: string): ResolvedFormat | undefined {
    const check = CHECKS[name];
    if (check) return { kind: 'check', check };
    const hash = HASH_FORMATS[name] ?? this.borrowed.get(name);
    return hash ? { kind: 'hash', format: hash } : undefined;
  }

  private lookup(name: string): ResolvedFormat | undefined {
    const direct = this.base(name);
    if (direct) return direct;
    const list = /^(.+)-list$/.exec(name);
    if (list) {
      const item = this.base(list[1] as string);
      if (item?.kind !== 'check') return undefined;
      return {
        kind: 'check',
        check: (v) => {
          for (const part of splitList(v)) {
            const p = item.check(part);
            if (p) return p;
          }
          return undefined;
        },
      };
    }
    const opt = /^(.+)-opt$/.exec(name);
    if (opt) {
      const item = this.base(opt[1] as string);
      if (item?.kind !== 'check') return undefined;
      // Perl's `return if !$value`: the empty string and "0" pass.
      return { kind: 'check', check: (v) => (v === '' || v === '0' ? undefined : item.check(v)) };
    }
    return undefined;
  }
}

/** Every format name the simulator enforces directly (without the -list/-opt derivations). */
export function knownFormatNames(): string[] {
  return [...Object.keys(CHECKS), ...Object.keys(HASH_FORMATS), ...Object.keys(BORROWED_HASH_FORMATS)].sort();
}
