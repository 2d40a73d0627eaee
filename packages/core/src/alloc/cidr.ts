import { AlreadyExistsError, ExhaustedError, InvalidRequestError } from '../errors.js';
import type { UsedResources } from '../providers/provider.js';
import type { AllocationStore } from '../store/contract.js';
import { contains, formatCidr, formatIpv4, type Ipv4Network, ipv4PoolName, parseCidr, parseIpv4 } from './ipv4.js';

export interface CidrPoolConfig {
  /** `10.55.0.0/24`: host bits zero, prefix /1 to /30. */
  cidr: string;
  /** Addresses never handed out: the gateway, a DNS server, a host's own address. */
  reserved?: readonly string[];
  /**
   * The pool name in the store; default `ipv4:<cidr>`, the name GoPveQemuAllocator uses for its
   * /24, so that the two share one network's addresses.
   */
  pool?: string;
}

/**
 * An IPv4 pool over one CIDR: every host address except the network and broadcast addresses and
 * the reserved ones, lowest first. Two pools over overlapping but different CIDRs are different
 * pools; give them one `pool` name if they must not hand out one address twice.
 */
export class CidrPool {
  readonly cidr: string;
  readonly pool: string;
  readonly #net: Ipv4Network;
  readonly #reserved: ReadonlySet<number>;
  readonly #store: AllocationStore;

  constructor(store: AllocationStore, config: CidrPoolConfig) {
    const net = parseCidr(config.cidr);
    // /31 and /32 have no network and broadcast addresses to skip (RFC 3021): too special to guess.
    if (net.prefix < 1 || net.prefix > 30)
      throw new InvalidRequestError({ message: `${config.cidr}: the prefix must be /1 to /30`, field: 'cidr' });
    const reserved = new Set<number>();
    for (const r of config.reserved ?? []) {
      const a = parseIpv4(r);
      if (a === undefined)
        throw new InvalidRequestError({
          message: `reserved ${JSON.stringify(r)} is not an IPv4 address`,
          field: 'reserved',
        });
      if (!contains(net, a))
        throw new InvalidRequestError({ message: `reserved ${r} is outside ${formatCidr(net)}`, field: 'reserved' });
      reserved.add(a);
    }
    this.#net = net;
    this.#reserved = reserved;
    this.#store = store;
    this.cidr = formatCidr(net);
    this.pool = config.pool ?? ipv4PoolName(net);
  }

  /** How many addresses the pool can hand out in all. */
  get size(): number {
    return this.#net.last - this.#net.network - 1 - this.#reserved.size;
  }

  /** True for an address this pool hands out (inside, not network, broadcast or reserved). */
  isAllocatable(address: string): boolean {
    const a = parseIpv4(address);
    return a !== undefined && this.#usable(a);
  }

  /** Every address the pool can hand out, lowest first, made as they are asked for. */
  *addresses(): Generator<string> {
    for (let a = this.#net.network + 1; a < this.#net.last; a++) if (!this.#reserved.has(a)) yield formatIpv4(a);
  }

  /**
   * Reserves the lowest free address for `owner`, skipping what the backend holds now (`used`'s
   * addresses, or `taken`). `ExhaustedError` when none is left. The answer's shape is the one a
   * provider's address pool gives, so a CidrPool is one as it is.
   */
  async allocate(req: { owner: string; used?: UsedResources; taken?: ReadonlySet<string> }): Promise<{ ipv4: string }> {
    const request: Parameters<AllocationStore['allocate']>[0] = {
      pool: this.pool,
      owner: req.owner,
      candidates: this.addresses(),
    };
    const taken = unite(req.used?.ipv4, req.taken);
    if (taken) request.taken = taken;
    const got = await this.#store.allocate(request);
    if (!got) throw new ExhaustedError({ message: `no free address left in ${this.cidr}` });
    return { ipv4: got.value };
  }

  /** Reserves exactly `address`; refused when it is not the pool's or someone holds it. */
  async claim(req: {
    owner: string;
    address: string;
    used?: UsedResources;
    taken?: ReadonlySet<string>;
  }): Promise<{ ipv4: string }> {
    const a = parseIpv4(req.address);
    if (a === undefined || !this.#usable(a))
      throw new InvalidRequestError({
        message: `${JSON.stringify(req.address)} is not an address ${this.cidr} hands out`,
        field: 'address',
      });
    const address = formatIpv4(a);
    if (req.taken?.has(address) || req.used?.ipv4.has(address))
      throw new AlreadyExistsError({ message: `address ${address} is in use` });
    const ok = await this.#store.claim({ pool: this.pool, owner: req.owner, value: address });
    if (!ok) throw new AlreadyExistsError({ message: `address ${address} is reserved by another operation` });
    return { ipv4: address };
  }

  /** Releases every address `owner` holds in this pool (undo, destroy). */
  release(owner: string): Promise<number> {
    return this.#store.releaseOwner(owner, [this.pool]);
  }

  #usable(a: number): boolean {
    return a > this.#net.network && a < this.#net.last && !this.#reserved.has(a);
  }
}

function unite(
  a: ReadonlySet<string> | undefined,
  b: ReadonlySet<string> | undefined,
): ReadonlySet<string> | undefined {
  if (!a || !b) return a ?? b;
  return new Set([...a, ...b]);
}
