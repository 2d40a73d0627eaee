import { createHash } from 'node:crypto';
import { encryptPassword, isCryptHash } from './crypt.js';
import { parsePropertyString } from './property-string.js';
import { type ConfigValue, fail } from './state.js';

/**
 * The cloud-init documents PVE generates from a VM's config (PVE::QemuServer::Cloudinit of
 * qemu-server 9): user-data, network-config and meta-data, as `cloudinit/dump` answers them and as
 * the simulated guest applies them at boot. Also the two settings PVE rewrites when it stores them.
 */

type Config = Record<string, ConfigValue>;

/** The node's /etc/resolv.conf, which PVE falls back to without `nameserver` / `searchdomain`. */
export const HOST_RESOLV_CONF = { search: 'vmplane.lan', nameservers: ['192.168.100.1'] } as const;

// URI::Escape's uri_escape leaves only these alone (encodeURIComponent also keeps !*'()).
const uriEscape = (text: string) =>
  encodeURIComponent(text).replace(/[!*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * A setting as PVE stores it: `cipassword` hashed with SHA-256 crypt unless it is a crypt hash
 * already; `sshkeys` decoded and escaped again by uri_escape (so `@` reads back as `%40`).
 */
export function storedCloudInitValue(key: string, value: ConfigValue): ConfigValue {
  if (key === 'cipassword' && typeof value === 'string' && !isCryptHash(value)) return encryptPassword(value);
  if (key === 'sshkeys' && typeof value === 'string') return uriEscape(safeDecode(value));
  return value;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** PVE's drive_is_cloudinit, on a drive's volume id. */
export const isCloudInitVolume = (volid: string) => /[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|vmdk))?$/.test(volid);

/** Whether the VM has a cloud-init drive attached. */
export function hasCloudInitDrive(config: Config): boolean {
  return Object.entries(config).some(
    ([k, v]) =>
      /^(ide|sata|scsi|virtio)\d+$/.test(k) && isCloudInitVolume(parsePropertyString(String(v), 'file').file ?? ''),
  );
}

export type CloudInitFormat = 'nocloud' | 'configdrive2' | 'opennebula';

/** `citype`, or configdrive2 for Windows (cloudbase-init reads nothing else), or nocloud. */
export function cloudInitFormat(config: Config): CloudInitFormat {
  if (config.citype !== undefined) return String(config.citype) as CloudInitFormat;
  return /^(wxp|w2k\d*|wvista|win\d+)$/.test(String(config.ostype ?? '')) ? 'configdrive2' : 'nocloud';
}

/** The keys of `sshkeys`, one per non-blank line. */
export function sshKeysOf(config: Config): string[] {
  if (config.sshkeys === undefined) return [];
  return safeDecode(String(config.sshkeys))
    .split('\n')
    .map((k) => k.replace(/\r?$/, ''))
    .filter((k) => /\S/.test(k));
}

function hostnameFqdn(config: Config, vmid: number): { hostname: string; fqdn: string } {
  const name = String(config.name ?? `VM${vmid}`);
  if (name.includes('.')) return { hostname: name.replace(/\..*$/, ''), fqdn: name };
  const search = config.searchdomain;
  return { hostname: name, fqdn: search ? `${name}.${search}` : name };
}

function dnsConf(config: Config): { search: string[]; nameservers: string[] } {
  const words = (s: string) => s.split(/\s+/).filter((w) => w !== '');
  return {
    search: words(String(config.searchdomain ?? HOST_RESOLV_CONF.search)),
    nameservers: config.nameserver !== undefined ? words(String(config.nameserver)) : [...HOST_RESOLV_CONF.nameservers],
  };
}

/** `ipconfigN` parsed, or undefined. */
export function ipConfig(config: Config, index: number): Record<string, string> | undefined {
  const v = config[`ipconfig${index}`];
  return v === undefined || v === '' ? undefined : parsePropertyString(String(v));
}

function netmask(prefix: number): string {
  const bits = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(prefix, 32))) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}

function splitIp4(cidr: string): [string, string] {
  const [addr = '', prefix] = cidr.split('/');
  if (prefix === undefined) fail(`not a CIDR: ${cidr}`);
  return [addr, netmask(Number(prefix))];
}

/** The `netN` keys with an ipconfig, in Perl's string order (net10 before net2). */
function configuredNics(config: Config): number[] {
  return Object.keys(config)
    .filter((k) => /^net\d+$/.test(k))
    .sort()
    .map((k) => Number(k.slice(3)))
    .filter((id) => ipConfig(config, id) !== undefined);
}

function macOf(config: Config, id: number): string {
  const p = parsePropertyString(String(config[`net${id}`]), 'model');
  const mac = p.macaddr ?? Object.values(p).find((v) => /^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/i.test(v));
  if (mac === undefined) return fail(`network interface 'net${id}' has no mac address`);
  return mac.toLowerCase();
}

/** cloudinit_userdata. */
export function userData(config: Config, vmid: number): string {
  const { hostname, fqdn } = hostnameFqdn(config, vmid);
  let out = `#cloud-config\nhostname: ${hostname}\nmanage_etc_hosts: true\nfqdn: ${fqdn}\n`;
  const user = config.ciuser === undefined ? undefined : String(config.ciuser);
  if (user !== undefined) out += `user: ${user}\n`;
  if (user === 'root') out += 'disable_root: False\n';
  if (config.cipassword !== undefined) out += `password: ${config.cipassword}\n`;
  if (config.sshkeys !== undefined) {
    out += 'ssh_authorized_keys:\n';
    for (const k of sshKeysOf(config)) out += `  - ${k}\n`;
  }
  out += 'chpasswd:\n  expire: False\n';
  if (user !== 'root') out += 'users:\n  - default\n';
  const upgrade = config.ciupgrade;
  if (upgrade === undefined || (upgrade !== 0 && upgrade !== '0')) out += 'package_upgrade: true\n';
  return out;
}

/** nocloud_network (network-config version 1). */
function nocloudNetwork(config: Config): string {
  let out = 'version: 1\nconfig:\n';
  for (const id of configuredNics(config)) {
    const ip = ipConfig(config, id) ?? {};
    out += `    - type: physical\n      name: eth${id}\n      mac_address: '${macOf(config, id)}'\n      subnets:\n`;
    const i = '      ';
    if (ip.ip === 'dhcp') out += `${i}- type: dhcp4\n`;
    else if (ip.ip !== undefined) {
      const [addr, mask] = splitIp4(ip.ip);
      out += `${i}- type: static\n${i}  address: '${addr}'\n${i}  netmask: '${mask}'\n`;
      if (ip.gw !== undefined) out += `${i}  gateway: '${ip.gw}'\n`;
    }
    if (ip.ip6 === 'dhcp') out += `${i}- type: dhcp6\n`;
    else if (ip.ip6 === 'auto') out += `${i}- type: ipv6_slaac\n`;
    else if (ip.ip6 !== undefined) {
      out += `${i}- type: static6\n${i}  address: '${ip.ip6}'\n`;
      if (ip.gw6 !== undefined) out += `${i}  gateway: '${ip.gw6}'\n`;
    }
  }
  // PVE tests the two lists, not their length, so this entry is always there.
  const dns = dnsConf(config);
  out += '    - type: nameserver\n';
  if (dns.nameservers.length > 0) out += `      address:\n${dns.nameservers.map((n) => `      - '${n}'\n`).join('')}`;
  if (dns.search.length > 0) out += `      search:\n${dns.search.map((s) => `      - '${s}'\n`).join('')}`;
  return out;
}

/** configdrive2_network (an /etc/network/interfaces file), which PVE also dumps for opennebula. */
function configdrive2Network(config: Config): string {
  let out = 'auto lo\niface lo inet loopback\n\n';
  const dns = dnsConf(config);
  if (dns.nameservers.length > 0) out += `        dns_nameservers ${dns.nameservers.join(' ')}\n`;
  if (dns.search.length > 0) out += `        dns_search ${dns.search.join(' ')}\n`;
  for (const n of configuredNics(config)) {
    const ip = ipConfig(config, n) ?? {};
    const id = `eth${n}`;
    out += `auto ${id}\n`;
    if (ip.ip === 'dhcp') out += `iface ${id} inet dhcp\n`;
    else if (ip.ip) {
      const [addr, mask] = splitIp4(ip.ip);
      out += `iface ${id} inet static\n        address ${addr}\n        netmask ${mask}\n`;
      if (ip.gw) out += `        gateway ${ip.gw}\n`;
    }
    if (ip.ip6 === 'auto' || ip.ip6 === 'dhcp') out += `iface ${id} inet6 ${ip.ip6}\n`;
    else if (ip.ip6) {
      const [addr, mask] = ip.ip6.split('/');
      out += `iface ${id} inet6 static\n        address ${addr}\n        netmask ${mask}\n`;
      if (ip.gw6) out += `        gateway ${ip.gw6}\n`;
    }
  }
  return out;
}

export function networkData(config: Config): string {
  return cloudInitFormat(config) === 'nocloud' ? nocloudNetwork(config) : configdrive2Network(config);
}

/** The instance id cloud-init keys its per-instance work on: a SHA-1 of user-data and network-config. */
export function instanceId(config: Config, vmid: number): string {
  return createHash('sha1')
    .update(userData(config, vmid) + networkData(config))
    .digest('hex');
}

export function metaData(config: Config, vmid: number): string {
  const id = instanceId(config, vmid);
  if (cloudInitFormat(config) === 'nocloud') return `instance-id: ${id}\n`;
  return `{\n     "uuid": "${id}",\n     "network_config": { "content_path": "/content/0000" }\n}\n`;
}

/** The address of `ipconfig0` without its prefix, when it is a static IPv4 address. */
export function staticAddress(config: Config): string | undefined {
  const ip = ipConfig(config, 0)?.ip;
  if (ip === undefined || ip === 'dhcp') return undefined;
  return ip.split('/')[0];
}
