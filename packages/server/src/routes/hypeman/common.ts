import { INSTANCE_STATES, type Instance } from '@vmplane/core';
import type { RouteAccess } from '../../types.js';

export const READ: { access: RouteAccess } = { access: { scope: 'read', flavour: 'hypeman' } };
export const WRITE: { access: RouteAccess } = { access: { scope: 'write', flavour: 'hypeman' } };
export const TAGS = ['hypeman'];

/** `{id}`: an id, a name or an id prefix; never a path (no `/`, `..` is refused by the pattern's first character). */
export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' } },
} as const;

export const stateSchema = { type: 'string', enum: [...INSTANCE_STATES] } as const;

export const tagsSchema = {
  type: 'object',
  maxProperties: 50,
  propertyNames: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9 _.:/=+@-]+$' },
  additionalProperties: { type: 'string', maxLength: 256, pattern: '^[A-Za-z0-9 _.:/=+@-]*$' },
} as const;

/**
 * hypeman's `Instance` as its server writes it: the nullable fields always present (`state_error`,
 * `started_at`, `stopped_at`, `expires_at`), empty maps left out, sizes in its format; plus
 * vmplane's `provider` and `ref`.
 */
export function wireInstance(i: Instance): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: i.id,
    name: i.name,
    image: i.image,
    state: i.state,
    state_error: i.state_error ?? null,
    created_at: i.created_at,
    expires_at: i.expires_at,
    started_at: i.started_at ?? null,
    stopped_at: i.stopped_at ?? null,
    exit_code: i.exit_code ?? null,
    has_snapshot: i.has_snapshot ?? false,
  };
  if (i.size !== undefined) out.size = formatSize(i.size);
  if (i.vcpus !== undefined) out.vcpus = i.vcpus;
  if (Object.keys(i.env).length > 0) out.env = i.env;
  if (Object.keys(i.tags).length > 0) out.tags = i.tags;
  if (i.network) out.network = { enabled: i.network.enabled ?? true, name: i.network.name ?? 'default', ...i.network };
  if (i.exit_message) out.exit_message = i.exit_message;
  if (i.hypervisor) out.hypervisor = i.hypervisor;
  if (i.current_phase) out.current_phase = i.current_phase;
  if (i.current_phase_since) out.current_phase_since = i.current_phase_since;
  if (i.phase_durations_ms) out.phase_durations_ms = i.phase_durations_ms;
  out.provider = i.provider;
  out.ref = i.ref;
  return out;
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

/** hypeman's human sizes (`1GB`, `512MB`, `2G`, `1024`), binary multiples; undefined when unreadable. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = UNITS[(m[2] ?? '').toUpperCase()];
  if (unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

/** Bytes as hypeman writes them: one decimal, the next unit only when strictly greater (1 GiB is `1024.0 MB`). */
export function formatBytes(bytes: number): string {
  if (bytes <= 0) return '0 B';
  const names = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let k = 0;
  while (k < names.length - 1 && value > 1024) {
    value /= 1024;
    k++;
  }
  return k === 0 ? `${bytes} B` : `${value.toFixed(1)} ${names[k]}`;
}

function formatSize(size: string): string {
  const bytes = parseSize(size);
  return bytes === undefined ? size : formatBytes(bytes);
}

/** Go's duration syntax (`60s`, `1m30s`, `500ms`, `2h`) in milliseconds; undefined when unreadable. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const scale: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = 0;
  let sign = 1;
  let rest = text;
  if (rest.startsWith('-')) {
    sign = -1;
    rest = rest.slice(1);
  }
  re.lastIndex = 0;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    total += Number(m[1]) * (scale[m[2] ?? ''] ?? 0);
    matched += m[0].length;
  }
  if (matched === 0 || matched !== rest.length) return undefined;
  return sign * total;
}

/** `tags[key]=value` pairs of a query string (deepObject; keys arrive percent-decoded). */
export function tagFilter(query: Record<string, unknown>): Record<string, string> | undefined {
  const tags: Record<string, string> = {};
  let any = false;
  for (const [k, v] of Object.entries(query)) {
    const m = /^tags\[(.+)\]$/.exec(k);
    if (!m?.[1]) continue;
    tags[m[1]] = Array.isArray(v) ? String(v[v.length - 1]) : String(v);
    any = true;
  }
  const nested = query.tags;
  if (nested && typeof nested === 'object' && !Array.isArray(nested)) {
    for (const [k, v] of Object.entries(nested as Record<string, unknown>)) {
      tags[k] = String(v);
      any = true;
    }
  }
  return any ? tags : undefined;
}
