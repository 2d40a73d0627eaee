import { AlreadyExistsError, ExhaustedError, InvalidRequestError } from '../errors.js';
import type { UsedResources } from '../providers/provider.js';
import type { AllocationKey, AllocationStore } from '../store/contract.js';
import { formatIpv4, ipv4PoolName, parseIpv4 } from './ipv4.js';

/** Proxmox accepts VMIDs from 100; the last octet of an address stops at 254 (255 is broadcast). */
const MIN_VMID = 100;
const MAX_OCTET = 254;

export interface GoPveQemuConfig {
  /** go-pve-qemu's `GATEWAY`: an IPv4 address whose /24 is the guests' network. */
  gateway: string;
  /** `ASSIGN_IP_START`, inclusive; default 100. */
  ipStart?: number;
  /** `ASSIGN_IP_END`, inclusive; default 254. */
  ipEnd?: number;
  /** The VMID pool: `vmid` unless two clusters need two VMID spaces. */
  vmidPool?: string;
}

/** What one install gets: the VMID and the address it implies. */
export interface GoPveQemuAllocation {
  vmid: number;
  ipv4: string;
  /** The network's prefix length: always 24. */
  prefixLength: 24;
  gateway: string;
}

/**
 * go-pve-qemu's rule: a guest's address is `<first three octets of GATEWAY>.<VMID>/24`, so the
 * VMID is the last octet and only ASSIGN_IP_START..ASSIGN_IP_END can be handed out. Unlike
 * go-pve-qemu, the pair is reserved in the store (VMID in `vmid`, address in `ipv4:<net>/24`, one
 * owner, both or neither) before anything acts, so two installs never pick the same one, and
 * what the backend holds (QEMU and LXC ids, addresses in use) is skipped.
 */
export class GoPveQemuAllocator {
  readonly gateway: string;
  /** `a.b.c.0/24`. */
  readonly network: string;
  readonly start: number;
  readonly end: number;
  readonly vmidPool: string;
  readonly ipPool: string;
  readonly #store: AllocationStore;
  readonly #prefix: string;
  readonly #gatewayOctet: number;

  /** Strict: a range outside 100..254, or a gateway that is no host address, is refused. */
  constructor(store: AllocationStore, config: GoPveQemuConfig) {
    const gw = parseIpv4(config.gateway);
    if (gw === undefined)
      throw new InvalidRequestError({
        message: `GATEWAY ${JSON.stringify(config.gateway)} is not an IPv4 address`,
        field: 'GATEWAY',
      });
    const octet = gw & 255;
    if (octet === 0 || octet === 255)
      throw new InvalidRequestError({
        message: `GATEWAY ${config.gateway} is the network or broadcast address of its /24`,
        field: 'GATEWAY',
      });
    const start = config.ipStart ?? MIN_VMID;
    const end = config.ipEnd ?? MAX_OCTET;
    checkBound(start, 'ASSIGN_IP_START');
    checkBound(end, 'ASSIGN_IP_END');
    if (start > end)
      throw new InvalidRequestError({
        message: `ASSIGN_IP_START (${start}) is above ASSIGN_IP_END (${end})`,
        field: 'ASSIGN_IP_START',
      });
    this.#store = store;
    this.gateway = config.gateway;
    this.#gatewayOctet = octet;
    this.#prefix = formatIpv4(gw - octet).replace(/\.0$/, '');
    this.network = `${this.#prefix}.0/24`;
    this.start = start;
    this.end = end;
    this.vmidPool = config.vmidPool ?? 'vmid';
    this.ipPool = ipv4PoolName({ network: gw - octet, prefix: 24, last: gw - octet + 255 });
  }

  /**
   * go-pve-qemu's reading of its environment: an unset, unparsable or zero ASSIGN_IP_START, or one
   * below 100, is 100; an unset, unparsable or zero ASSIGN_IP_END, or one above 254, is 254; a
   * start above the end swaps them. Only GATEWAY is required.
   */
  static fromEnv(
    store: AllocationStore,
    env: Readonly<Record<string, string | undefined>>,
    opts: { vmidPool?: string } = {},
  ): GoPveQemuAllocator {
    const gateway = env.GATEWAY;
    if (gateway === undefined || gateway === '')
      throw new InvalidRequestError({ message: 'GATEWAY environment variable is required', field: 'GATEWAY' });
    let start = parseEnvInt(env.ASSIGN_IP_START);
    let end = parseEnvInt(env.ASSIGN_IP_END);
    if (start === 0 || start < MIN_VMID) start = MIN_VMID;
    if (end === 0 || end > MAX_OCTET) end = MAX_OCTET;
    if (start > end) [start, end] = [end, start];
    // A swapped pair can still leave the range (END=50): the constructor says so.
    const config: GoPveQemuConfig = { gateway, ipStart: start, ipEnd: end };
    if (opts.vmidPool !== undefined) config.vmidPool = opts.vmidPool;
    return new GoPveQemuAllocator(store, config);
  }

  /** The address VMID `vmid` gets. */
  ipFor(vmid: number): string {
    return `${this.#prefix}.${vmid}`;
  }

  /** Every VMID the rule can hand out, in order: the range without the gateway's own octet. */
  candidates(): number[] {
    const out: number[] = [];
    for (let n = this.start; n <= this.end; n++) if (n !== this.#gatewayOctet) out.push(n);
    return out;
  }

  /**
   * Reserves a VMID and its address for `owner`: the lowest free one, or exactly `vmid` when
   * given. `used` is what the backend holds now. Throws `ExhaustedError` when the range is full,
   * `AlreadyExistsError` when the requested VMID or its address is taken, `InvalidRequestError`
   * when the requested VMID is outside the range.
   */
  async allocate(req: { owner: string; used?: UsedResources; vmid?: number }): Promise<GoPveQemuAllocation> {
    const used = req.used;
    if (req.vmid !== undefined) return this.#claim(req.owner, req.vmid, used);
    // The backend's holdings are left out here; the store skips what other operations reserved.
    const free = this.candidates()
      .filter((n) => !used?.vmids.has(n) && !used?.ipv4.has(this.ipFor(n)))
      .map((n) => this.#keys(n));
    const got = await this.#store.allocateGroup({ owner: req.owner, candidates: free });
    const vmid = got?.find((a) => a.pool === this.vmidPool)?.value;
    if (vmid === undefined)
      throw new ExhaustedError({
        message: `no free VMID in ${this.start}..${this.end} (addresses ${this.ipFor(this.start)} to ${this.ipFor(this.end)})`,
      });
    return this.#result(Number(vmid));
  }

  /** Releases every VMID and address `owner` holds in this rule's pools (undo, destroy). */
  release(owner: string): Promise<number> {
    return this.#store.releaseOwner(owner, [this.vmidPool, this.ipPool]);
  }

  async #claim(owner: string, vmid: number, used: UsedResources | undefined): Promise<GoPveQemuAllocation> {
    if (!Number.isSafeInteger(vmid) || vmid < this.start || vmid > this.end || vmid === this.#gatewayOctet) {
      const why =
        vmid === this.#gatewayOctet ? `it is the gateway's address` : `it is outside ${this.start}..${this.end}`;
      throw new InvalidRequestError({ message: `VMID ${vmid} cannot be used: ${why}`, field: 'id' });
    }
    const ip = this.ipFor(vmid);
    if (used?.vmids.has(vmid)) throw new AlreadyExistsError({ message: `VMID ${vmid} exists already on the backend` });
    if (used?.ipv4.has(ip)) throw new AlreadyExistsError({ message: `address ${ip} (VMID ${vmid}) is in use` });
    const ok = await this.#store.claimGroup({ owner, values: this.#keys(vmid) });
    if (!ok) throw new AlreadyExistsError({ message: `VMID ${vmid} (address ${ip}) is reserved by another operation` });
    return this.#result(vmid);
  }

  #keys(vmid: number): readonly AllocationKey[] {
    return [
      { pool: this.vmidPool, value: String(vmid) },
      { pool: this.ipPool, value: this.ipFor(vmid) },
    ];
  }

  #result(vmid: number): GoPveQemuAllocation {
    return { vmid, ipv4: this.ipFor(vmid), prefixLength: 24, gateway: this.gateway };
  }
}

function checkBound(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < MIN_VMID || value > MAX_OCTET)
    throw new InvalidRequestError({
      message: `${field} must be a whole number from ${MIN_VMID} to ${MAX_OCTET} (a VMID and a last octet), not ${value}`,
      field,
    });
}

/** Go's strconv.Atoi as go-pve-qemu uses it: anything unparsable is 0. */
function parseEnvInt(text: string | undefined): number {
  if (text === undefined || !/^[+-]?[0-9]+$/.test(text)) return 0;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : 0;
}
