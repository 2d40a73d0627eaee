/**
 * The firewall's rule formats (PVE::Firewall): address specs, port specs, protocols, ICMP types
 * and conntrack helpers.
 *
 * Two checks are by shape where PVE looks names up on the node: service names (/etc/services)
 * and protocol names (/etc/protocols) must look like names, since the list is the host's.
 */
import { type FormatCheck, problem } from '../problem.js';
import { netIpFamily, reFwAlias } from './net.js';

const ICMP_TYPES = new Set([
  'any',
  'echo-reply',
  'destination-unreachable',
  'network-unreachable',
  'host-unreachable',
  'protocol-unreachable',
  'port-unreachable',
  'fragmentation-needed',
  'source-route-failed',
  'network-unknown',
  'host-unknown',
  'network-prohibited',
  'host-prohibited',
  'TOS-network-unreachable',
  'TOS-host-unreachable',
  'communication-prohibited',
  'host-precedence-violation',
  'precedence-cutoff',
  'source-quench',
  'redirect',
  'network-redirect',
  'host-redirect',
  'TOS-network-redirect',
  'TOS-host-redirect',
  'echo-request',
  'router-advertisement',
  'router-solicitation',
  'time-exceeded',
  'ttl-zero-during-transit',
  'ttl-zero-during-reassembly',
  'parameter-problem',
  'ip-header-bad',
  'required-option-missing',
  'timestamp-request',
  'timestamp-reply',
  'address-mask-request',
  'address-mask-reply',
]);

const ICMPV6_TYPES = new Set([
  'destination-unreachable',
  'no-route',
  'communication-prohibited',
  'beyond-scope',
  'address-unreachable',
  'port-unreachable',
  'failed-policy',
  'reject-route',
  'packet-too-big',
  'time-exceeded',
  'ttl-zero-during-transit',
  'ttl-zero-during-reassembly',
  'parameter-problem',
  'bad-header',
  'unknown-header-type',
  'unknown-option',
  'echo-request',
  'echo-reply',
  'router-solicitation',
  'router-advertisement',
  'neighbor-solicitation',
  'neighbour-solicitation',
  'neighbor-advertisement',
  'neighbour-advertisement',
  'redirect',
]);

const CONNTRACK_HELPERS = new Set(['amanda', 'ftp', 'irc', 'netbios-ns', 'pptp', 'sane', 'sip', 'snmp', 'tftp']);

const reName = /^[a-zA-Z][a-zA-Z0-9+._-]*$/;

/** A list of addresses, networks or one range, of one family; or an alias; or an IP set (`+name`). */
const addressSpec: FormatCheck = (v) => {
  if (/^\+\S+$/.test(v)) {
    if (v.length > 65) return problem('ipset name too long');
    return /^\+(?:(?:dc|guest|sdn)\/)?[A-Za-z][A-Za-z0-9\-_]+$/.test(v)
      ? undefined
      : problem((show) => `invalid ipset name '${show(v)}'`);
  }
  if (reFwAlias.test(v)) return v.length > 64 ? problem('alias name too long') : undefined;
  const elements = v.split(',');
  if (elements.some((e) => e === '')) return problem('extraneous commas in list');
  let family: number | undefined;
  let range = false;
  for (const e of elements) {
    const f = netIpFamily(e);
    if (f === undefined) return problem((show) => `invalid IP address: ${show(e)}`);
    if (family !== undefined && f !== family) return problem('unable to mix ipv4 and ipv6 addresses');
    family = f;
    if (e.includes('-')) range = true;
  }
  if (range && elements.length > 1) return problem('you can use a range in a list');
  return undefined;
};

/** Ports, `a:b` ranges and service names, at most 15 numbers (iptables' multiport limit). */
const portSpec: FormatCheck = (v) => {
  const elements = v.split(',');
  if (elements.some((e) => e === '')) return problem('extraneous commas in list');
  let count = 0;
  for (const item of elements) {
    const range = /^(\d+):(\d+)$/.exec(item);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (a > 65535) return problem((show) => `invalid port '${show(String(range[1]))}'`);
      if (b > 65535) return problem((show) => `invalid port '${show(String(range[2]))}'`);
      if (a > b) return problem((show) => `backwards range '${show(item)}' not allowed`);
      count += 2;
    } else if (/^\d+$/.test(item)) {
      if (Number(item) > 65535) return problem((show) => `invalid port '${show(item)}'`);
      count += 1;
    } else if (reName.test(item)) count += 1;
    else return problem((show) => `invalid port '${show(item)}'`);
  }
  if (count > 15) return problem('too many entries in port list (> 15 numbers)');
  return undefined;
};

export const FIREWALL_FORMATS: Record<string, FormatCheck> = {
  'pve-fw-addr-spec': addressSpec,
  'pve-fw-dport-spec': portSpec,
  'pve-fw-sport-spec': portSpec,
  'pve-fw-protocol-spec': (v) =>
    (/^\d+$/.test(v) && Number(v) <= 255) || reName.test(v)
      ? undefined
      : problem((show) => `unknown protocol '${show(v)}'`),
  'pve-fw-icmp-type-spec': (v) => {
    if (ICMP_TYPES.has(v) || ICMPV6_TYPES.has(v)) return undefined;
    const num = /^(\d+)(?:\/(\d+))?$/.exec(v);
    if (num && Number(num[1]) <= 255 && (num[2] === undefined || Number(num[2]) <= 255)) return undefined;
    return problem((show) => `invalid icmp-type value '${show(v)}'`);
  },
  'pve-fw-conntrack-helper': (v) => {
    for (const h of v.split(',').filter((x) => x !== ''))
      if (!CONNTRACK_HELPERS.has(h)) return problem((show) => `unknown conntrack helper '${show(h)}'`);
    return undefined;
  },
};
