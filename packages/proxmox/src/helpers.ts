import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from './errors.js';

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;
const SI = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'] as const;

export interface FormatBytesOptions {
  /** Powers of 1000 with SI names instead of powers of 1024 with IEC names. */
  si?: boolean;
  /** Digits after the point for anything above bytes (default 1); trailing zeros are dropped. */
  decimals?: number;
}

/** `formatBytes(1536) === '1.5 KiB'`; negative, NaN and infinite input read as 0 B, not as garbage. */
export function formatBytes(bytes: number, opts: FormatBytesOptions = {}): string {
  const base = opts.si ? 1000 : 1024;
  const units = opts.si ? SI : IEC;
  let value = Number.isFinite(bytes) && bytes > 0 ? bytes : 0;
  let unit = 0;
  while (value >= base && unit < units.length - 1) {
    value /= base;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const text = value.toFixed(opts.decimals ?? 1).replace(/\.?0+$/, '');
  return `${text} ${units[unit]}`;
}

/** `formatUptime(93784) === '1d 2h 3m'`; below a minute it shows seconds (`'42s'`). */
export function formatUptime(seconds: number): string {
  const total = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  if (total < 60) return `${total}s`;
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3_600);
  const minutes = Math.floor((total % 3_600) / 60);
  const parts: string[] = [];
  if (days) parts.push(`${days}d`);
  if (days || hours) parts.push(`${hours}h`);
  parts.push(`${minutes}m`);
  return parts.join(' ');
}

/** The smallest and largest VMID PVE accepts (pve-vmid). */
export const MIN_VMID = 100;
export const MAX_VMID = 999_999_999;

/**
 * Reads a VMID from a number, a numeric string, or a resource id such as `qemu/100`.
 * Throws InvalidArgumentError for anything else, including ids outside PVE's 100..999999999.
 */
export function parseVmid(value: unknown): number {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    const m = /^(?:(?:qemu|lxc)\/)?\s*(\d+)\s*$/.exec(value);
    if (m) n = Number(m[1]);
  }
  if (n === undefined || !Number.isInteger(n) || n < MIN_VMID || n > MAX_VMID) {
    throw new InvalidArgumentError({
      message: `Invalid VMID ${JSON.stringify(value)}`,
      argument: 'vmid',
      backend: BACKEND,
    });
  }
  return n;
}

/** A string from any JSON value PVE sends: numbers are printed, null/undefined/objects give the fallback. */
export function safeString(value: unknown, fallback = ''): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  return fallback;
}

/** A finite number from a number or numeric string (PVE sends both), else the fallback. */
export function safeFloat(value: unknown, fallback = 0): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : fallback;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value.trim());
    return Number.isFinite(n) ? n : fallback;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  return fallback;
}

/** An integer (truncated) from a number or numeric string, else the fallback. */
export function safeInt(value: unknown, fallback = 0): number {
  const n = safeFloat(value, Number.NaN);
  return Number.isNaN(n) ? fallback : Math.trunc(n);
}

/** PVE's booleans: true, 1, '1', 'true', 'yes', 'on' (any case) are true; everything else false. */
export function safeBool(value: unknown, fallback = false): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') {
    const t = value.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
  }
  return fallback;
}

/** An interface as the QEMU guest agent (network-get-interfaces) or LXC (/interfaces) reports it. */
export interface IpInterfaceLike {
  name?: string | undefined;
  'ip-addresses'?: readonly { 'ip-address'?: string | undefined; 'ip-address-type'?: string | undefined }[] | undefined;
  inet?: string | undefined;
  inet6?: string | undefined;
}

function isLoopbackOrLinkLocal(ip: string): boolean {
  const a = ip.toLowerCase();
  return (
    a.startsWith('127.') ||
    a === '::1' ||
    a.startsWith('fe80:') ||
    a.startsWith('169.254.') ||
    a === '0.0.0.0' ||
    a === '::'
  );
}

/**
 * The first address that is neither loopback nor link-local, IPv4 preferred over IPv6, skipping
 * the `lo` interface. Prefixes (`10.0.0.5/24`, as LXC reports) are stripped.
 */
export function firstNonLoopbackIp(interfaces: readonly IpInterfaceLike[] | undefined): string | undefined {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const iface of interfaces ?? []) {
    if (iface.name === 'lo') continue;
    const found: { ip: string; v6: boolean }[] = [];
    for (const a of iface['ip-addresses'] ?? []) {
      if (a['ip-address'])
        found.push({ ip: a['ip-address'], v6: a['ip-address-type'] === 'ipv6' || a['ip-address'].includes(':') });
    }
    if (iface.inet) found.push({ ip: iface.inet, v6: false });
    if (iface.inet6) found.push({ ip: iface.inet6, v6: true });
    for (const f of found) {
      const ip = f.ip.split('/')[0]!;
      if (!ip || isLoopbackOrLinkLocal(ip)) continue;
      (f.v6 ? v6 : v4).push(ip);
    }
  }
  return v4[0] ?? v6[0];
}
