/**
 * Network formats, as PVE::JSONSchema (pve-common) and the storage, LXC and SDN plugins define
 * them: addresses, CIDRs, masks, MAC addresses, DNS names, interface and bridge names, portals.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { type FormatCheck, problem } from '../problem.js';
import { matching, when } from './common.js';

// PVE's IPV6RE knows no zone index (`fe80::1%eth0`), which Node's isIPv6 accepts.
export const isV4 = (v: string): boolean => isIPv4(v);
export const isV6 = (v: string): boolean => !v.includes('%') && isIPv6(v);
export const isIp = (v: string): boolean => isV4(v) || isV6(v);

/** `address/prefix` with PVE's bounds: a prefix of 8 or more (pve_verify_cidr refuses shorter ones). */
function cidrOf(v: string, family: 4 | 6 | 0): boolean {
  const m = /^([^/]+)\/(\d+)$/.exec(v);
  if (!m) return false;
  const [, ip, bits] = m as unknown as [string, string, string];
  const n = Number(bits);
  if ((family === 0 || family === 4) && isV4(ip)) return n > 7 && n <= 32;
  if ((family === 0 || family === 6) && isV6(ip)) return n > 7 && n <= 128;
  return false;
}

/** The bits of an address, most significant first, for prefix arithmetic. */
function addressBits(ip: string): bigint | undefined {
  if (isV4(ip)) return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  if (!isV6(ip)) return undefined;
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = addressBits(v4[1] as string) ?? 0n;
    text = `${text.slice(0, -(v4[1] as string).length)}${(b >> 16n).toString(16)}:${(b & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

/**
 * What Net::IP accepts as one element: an address, a network with its host bits clear
 * (`10.0.0.0/24`, not `10.0.0.5/24`), or a range `a-b` of one family in ascending order.
 */
export function netIpFamily(v: string): 4 | 6 | undefined {
  const range = /^([^-\s]+)\s*-\s*([^-\s]+)$/.exec(v);
  if (range) {
    const [a, b] = [range[1] as string, range[2] as string];
    const fa = isV4(a) ? 4 : isV6(a) ? 6 : undefined;
    const fb = isV4(b) ? 4 : isV6(b) ? 6 : undefined;
    if (!fa || fa !== fb) return undefined;
    return (addressBits(a) ?? 0n) <= (addressBits(b) ?? 0n) ? fa : undefined;
  }
  const m = /^([^/]+)(?:\/(\d+))?$/.exec(v);
  if (!m) return undefined;
  const ip = m[1] as string;
  const family = isV4(ip) ? 4 : isV6(ip) ? 6 : undefined;
  if (!family) return undefined;
  if (m[2] === undefined) return family;
  const width = family === 4 ? 32 : 128;
  const bits = Number(m[2]);
  if (bits > width) return undefined;
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  return ((addressBits(ip) ?? 0n) & hostMask) === 0n ? family : undefined;
}

const LABEL = '[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?';
const reDnsName = new RegExp(`^(${LABEL}\\.)*${LABEL}$`);
export const isDnsName = (v: string): boolean => reDnsName.test(v);

// A firewall alias, optionally scoped to the datacenter or the guest.
export const reFwAlias = /^(?:(?:dc|guest)\/)?[A-Za-z][A-Za-z0-9\-_]+$/;

/** PVE::Tools::parse_host_and_port: an IPv4 address or host name, or a bracketed IPv6, each with an optional port. */
export function isHostAndPort(v: string): boolean {
  const plain = /^([A-Za-z0-9\-.]+)(?::(\d+))?$/.exec(v);
  if (plain) return true;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  return v6 !== null && isV6(v6[1] as string);
}

function ipv4MaskBits(v: string): number | undefined {
  if (!isV4(v)) return undefined;
  const n = Number(addressBits(v));
  for (let bits = 0; bits <= 32; bits++) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (n === mask) return bits;
  }
  return undefined;
}

const reIface = /^[a-z][a-z0-9_]{1,20}([:.]\d+)?$/i;

const vlanId = (v: string): boolean => /^\d+$/.test(v) && Number(v) >= 2 && Number(v) <= 4094;

export const NET_FORMATS: Record<string, FormatCheck> = {
  ip: when(isIp, () => 'value does not look like a valid IP address'),
  ipv4: when(isV4, () => 'value does not look like a valid IPv4 address'),
  ipv6: when(isV6, () => 'value does not look like a valid IPv6 address'),
  ipv4mask: when(
    (v) => ipv4MaskBits(v) !== undefined,
    () => 'value does not look like a valid IP netmask',
  ),
  CIDR: when(
    (v) => cidrOf(v, 0),
    () => 'value does not look like a valid CIDR network',
  ),
  CIDRv4: when(
    (v) => cidrOf(v, 4),
    () => 'value does not look like a valid IPv4 CIDR network',
  ),
  CIDRv6: when(
    (v) => cidrOf(v, 6),
    () => 'value does not look like a valid IPv6 CIDR network',
  ),
  IPorCIDR: when(
    (v) => !v.includes('-') && netIpFamily(v) !== undefined,
    () => 'value does not look like a valid IP address or CIDR network',
  ),
  IPorCIDRorAlias: when(
    (v) => reFwAlias.test(v) || (!v.includes('-') && netIpFamily(v) !== undefined),
    () => 'value does not look like a valid IP address, CIDR network or alias',
  ),
  address: when(
    (v) => isIp(v) || isDnsName(v),
    (show, v) => `value does not look like a valid address: ${show(v)}`,
  ),
  'dns-name': when(isDnsName, () => 'value does not look like a valid domain name'),
  'graphite-path': when(isDnsName, () => 'value does not look like a valid graphite path'),
  'mac-addr': matching(
    /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i,
    () => 'value does not look like a valid unicast MAC address',
  ),
  'mac-prefix': matching(
    /^[a-f0-9][02468ace](?::[a-f0-9]{2}){0,2}:?$/i,
    () => 'value does not look like a valid unicast MAC address prefix',
  ),
  'pve-iface': matching(reIface, (show, v) => `invalid network interface name '${show(v)}'`),
  'pve-bridge-id': matching(/^[-_.\w]+$/, (show, v) => `invalid bridge ID '${show(v)}'`),
  'pve-ipv4-config': when(
    (v) => v === 'dhcp' || v === 'manual' || cidrOf(v, 4),
    () => 'value does not look like a valid ipv4 network configuration',
  ),
  'pve-ipv6-config': when(
    (v) => v === 'auto' || v === 'dhcp' || v === 'manual' || cidrOf(v, 6),
    () => 'value does not look like a valid ipv6 network configuration',
  ),
  // A link-local IPv6 address may name its interface: fe80::1%eth0.
  'lxc-ip-with-ll-iface': when(
    (v) => {
      const ll = /^(fe80:[^%]+)%(.*)$/i.exec(v);
      if (ll) return isV6(ll[1] as string) && reIface.test(ll[2] as string);
      return isIp(v);
    },
    () => 'value does not look like a valid IP address',
  ),
  'pve-storage-portal-dns': when(isHostAndPort, () => 'value does not look like a valid portal address'),
  'pve-storage-server': when(
    (v) => isIp(v) || isDnsName(v),
    () => 'value does not look like a valid server name or IP address',
  ),
  'pve-vlan-id-or-range': (v) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(v);
    if (!m) return problem((show) => `invalid VLAN configuration '${show(v)}'`);
    const [start, end] = [m[1] as string, m[2]];
    for (const tag of end === undefined ? [start] : [start, end])
      if (!vlanId(tag)) return problem((show) => `invalid VLAN tag '${show(tag)}'`);
    if (end !== undefined && Number(start) >= Number(end))
      return problem((show) => `VLAN range must go from lower to higher tag '${show(v)}'`);
    return undefined;
  },
  'pve-sdn-bgp-rt': when(
    (v) => {
      const m = /^(\d+|\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(v);
      if (!m) return false;
      const [admin, assigned] = [m[1] as string, Number(m[2])];
      if (admin.includes('.')) return isV4(admin) && assigned <= 0xffff;
      return Number(admin) <= 0xffffffff && assigned <= 0xffffffff;
    },
    () => 'value does not look like a valid bgp route-target',
  ),
  'pve-sdn-isis-net': matching(
    /^[a-fA-F0-9]{2}(\.[a-fA-F0-9]{4}){3,9}\.[a-fA-F0-9]{2}$/,
    () => 'value does not look like a valid isis net',
  ),
  // `zone-10.0.0.0-24`: the zone, then the network with a dash for the slash.
  'pve-sdn-subnet-id': when(
    (v) => {
      const m = /^[a-z][a-z0-9]*-(.+)-(\d+)$/i.exec(v);
      return m !== null && cidrOf(`${m[1]}/${m[2]}`, 0);
    },
    () => 'value does not look like a valid CIDR network',
  ),
  'pve-acme-domain': matching(
    /^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)+$/i,
    (show, v) => `value '${show(v)}' does not look like a valid domain name!`,
  ),
  'pve-acme-alias': matching(
    /^[a-z0-9_][a-z0-9_-]*(?:\.[a-z0-9_][a-z0-9_-]*)+$/i,
    (show, v) => `value '${show(v)}' does not look like a valid alias name!`,
  ),
};
