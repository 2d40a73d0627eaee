import { InvalidRequestError } from '../errors.js';

/**
 * IPv4 addresses as unsigned 32-bit numbers. Only the dotted-quad form is accepted, each part
 * 0-255 with no leading zero: `010` is octal to some parsers and decimal to others, and an
 * address that two programs read differently must not be allocated.
 */
export function parseIpv4(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** An IPv4 network: the address with its host bits zero, and the prefix length. */
export interface Ipv4Network {
  network: number;
  prefix: number;
  /** The last address (the broadcast address for a prefix up to /30). */
  last: number;
}

/** `10.55.0.0/24`. Host bits must be zero, so that `10.55.0.1/24` is not taken for the network. */
export function parseCidr(text: string, field = 'cidr'): Ipv4Network {
  const [addr, bits, ...rest] = typeof text === 'string' ? text.split('/') : [];
  const base = addr === undefined ? undefined : parseIpv4(addr);
  const prefix = bits !== undefined && /^[0-9]{1,2}$/.test(bits) ? Number(bits) : Number.NaN;
  if (base === undefined || rest.length > 0 || !(prefix >= 0 && prefix <= 32))
    throw new InvalidRequestError({ message: `${JSON.stringify(text)} is not an IPv4 CIDR (a.b.c.d/n)`, field });
  const size = 2 ** (32 - prefix);
  const network = base - (base % size);
  if (network !== base)
    throw new InvalidRequestError({
      message: `${text} has host bits set: the network is ${formatIpv4(network)}/${prefix}`,
      field,
    });
  return { network, prefix, last: network + size - 1 };
}

export function formatCidr(net: Ipv4Network): string {
  return `${formatIpv4(net.network)}/${net.prefix}`;
}

export function contains(net: Ipv4Network, address: number): boolean {
  return address >= net.network && address <= net.last;
}

/** The pool name shared by every allocator of one network, so that two never hand out one address. */
export function ipv4PoolName(net: Ipv4Network): string {
  return `ipv4:${formatCidr(net)}`;
}
