/**
 * PVE's property strings: `virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1` or
 * `local-lvm:vm-100-disk-0,size=32G`. A first item without `=` belongs to the format's default key.
 */
export function parsePropertyString(text: string, defaultKey?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of splitTopLevel(text)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (defaultKey && out[defaultKey] === undefined) out[defaultKey] = part;
      else out[part] = '1';
    } else out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

// Values such as `trunks=10;20` or quoted `mountoptions` never hold a bare comma, but a quoted
// value might (`description` style); honour double quotes so such a value is not cut in two.
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      parts.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  parts.push(cur.trim());
  return parts;
}

export type PropertyValue = string | number | boolean | undefined | null;

/** The inverse of parsePropertyString; booleans are written 1/0 and undefined/null values skipped. */
export function formatPropertyString(values: Readonly<Record<string, PropertyValue>>, defaultKey?: string): string {
  const parts: string[] = [];
  if (defaultKey !== undefined) {
    const first = values[defaultKey];
    if (first !== undefined && first !== null) parts.push(String(first));
  }
  for (const [key, value] of Object.entries(values)) {
    if (key === defaultKey || value === undefined || value === null) continue;
    parts.push(`${key}=${typeof value === 'boolean' ? (value ? '1' : '0') : String(value)}`);
  }
  return parts.join(',');
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

/** `32G` → bytes. PVE writes sizes with binary K/M/G/T suffixes; a bare number is bytes. */
export function parseSize(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([BKMGTP]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toUpperCase()] ?? 1));
}
