/** PVE property strings: `key=value,key2=value2`, with a default key and double quotes. */

/** Splits a PVE property string on commas, honouring double quotes. */
export function splitPropertyString(value: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && i + 1 < value.length) cur += value[++i];
    else if (c === ',' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts.filter((p) => p !== '');
}

/** Parses a property string into a map, without schema (default key under `_default`). */
export function parsePropertyString(value: string, defaultKey = '_default'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of splitPropertyString(value)) {
    const eq = part.indexOf('=');
    if (eq < 0) out[defaultKey] = part;
    else out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Formats a map back into a property string (default key first, without `key=`). */
export function formatPropertyString(props: Record<string, string | number | undefined>, defaultKey?: string): string {
  const parts: string[] = [];
  if (defaultKey && props[defaultKey] !== undefined) parts.push(String(props[defaultKey]));
  for (const [k, v] of Object.entries(props)) {
    if (k === defaultKey || v === undefined) continue;
    parts.push(`${k}=${v}`);
  }
  return parts.join(',');
}
