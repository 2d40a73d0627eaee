import { formatPropertyString } from './property-string.js';

/**
 * PVE stores `sshkeys` percent-encoded and checks it against its `urlencoded` format, which
 * allows only `-%a-zA-Z0-9_.!~*'()` — exactly the set encodeURIComponent leaves alone. So spaces
 * must be `%20` and newlines `%0A`; form-style `+` for a space, as URLSearchParams writes, is refused.
 */
export function encodeSshKeys(keys: string | readonly string[]): string {
  const text =
    typeof keys === 'string'
      ? keys
      : keys
          .map((k) => k.trim())
          .filter(Boolean)
          .join('\n');
  return encodeURIComponent(text);
}

/** Reads `sshkeys` back from a config into one key per entry. */
export function decodeSshKeys(encoded: string | undefined): string[] {
  if (!encoded) return [];
  return decodeURIComponent(encoded)
    .split(/\r?\n/)
    .map((k) => k.trim())
    .filter(Boolean);
}

/** One cloud-init `ipconfig[n]`: `ip` is `dhcp`, `auto` (v6) or an address with prefix. */
export interface CloudInitIpConfig {
  ip?: string;
  gw?: string;
  ip6?: string;
  gw6?: string;
}

export interface CloudInitOptions {
  ciuser?: string;
  cipassword?: string;
  /** One key per entry (or one string with a key per line); encoded as PVE expects. */
  sshKeys?: string | readonly string[];
  /** ipconfig0, ipconfig1, ... in order. */
  ipconfig?: readonly CloudInitIpConfig[];
  /** DNS servers, space separated in PVE's config. */
  nameserver?: string | readonly string[];
  searchdomain?: string;
  citype?: 'configdrive2' | 'nocloud' | 'opennebula';
  ciupgrade?: boolean;
}

/** The config parameters for a cloud-init set-up, ready for `POST .../config` or `POST .../qemu`. */
export function cloudInitParams(opts: CloudInitOptions): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (opts.ciuser !== undefined) out.ciuser = opts.ciuser;
  if (opts.cipassword !== undefined) out.cipassword = opts.cipassword;
  if (opts.sshKeys !== undefined) out.sshkeys = encodeSshKeys(opts.sshKeys);
  opts.ipconfig?.forEach((c, i) => {
    out[`ipconfig${i}`] = formatPropertyString({ ip: c.ip, gw: c.gw, ip6: c.ip6, gw6: c.gw6 });
  });
  if (opts.nameserver !== undefined) {
    out.nameserver = typeof opts.nameserver === 'string' ? opts.nameserver : opts.nameserver.join(' ');
  }
  if (opts.searchdomain !== undefined) out.searchdomain = opts.searchdomain;
  if (opts.citype !== undefined) out.citype = opts.citype;
  if (opts.ciupgrade !== undefined) out.ciupgrade = opts.ciupgrade;
  return out;
}
