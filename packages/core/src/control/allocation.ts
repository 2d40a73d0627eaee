import type { GoPveQemuAllocator } from '../alloc/gopveqemu.js';
import { ExhaustedError } from '../errors.js';
import type { Provider, UsedResources } from '../providers/provider.js';
import type { AllocationStore } from '../store/contract.js';
import type { InstallAllocator } from './install.js';

/** A provider's way of handing out addresses; without one, its guests get only an id. */
export interface AddressPool {
  allocate(req: { owner: string; used?: UsedResources }): Promise<{ ipv4: string }>;
}

export interface AllocationPolicy {
  /** go-pve-qemu's rule (VMID == last octet of GATEWAY's /24) for these providers' installs. */
  gopveqemu?: { allocator: GoPveQemuAllocator; providers: readonly string[] };
  /** A CIDR pool per provider (LXD guests on a managed bridge get a static address from it). */
  pools?: Readonly<Record<string, AddressPool>>;
  /** Numeric ids for guests outside go-pve-qemu's rule: this range, in the `id` pool. */
  idRange?: { start: number; end: number };
}

/**
 * Picks the allocation rule by provider: go-pve-qemu's VMID/IP pair where configured, otherwise a
 * numeric id from the `id` pool and, where the provider has a pool, an address. Everything is held
 * by the operation (owner = its id) until the install hands it to the instance.
 */
export class PolicyAllocator implements InstallAllocator {
  readonly #store: AllocationStore;
  readonly #policy: AllocationPolicy;

  constructor(store: AllocationStore, policy: AllocationPolicy) {
    this.#store = store;
    this.#policy = policy;
  }

  async reserve(
    owner: string,
    req: { provider: Provider; requestedId?: number; used: UsedResources; signal: AbortSignal },
  ): Promise<{ vmid: number; ipv4?: string }> {
    const rule = this.#policy.gopveqemu;
    if (rule?.providers.includes(req.provider.name)) {
      const a: Parameters<GoPveQemuAllocator['allocate']>[0] = { owner, used: req.used };
      if (req.requestedId !== undefined) a.vmid = req.requestedId;
      const got = await rule.allocator.allocate(a);
      return { vmid: got.vmid, ipv4: got.ipv4 };
    }
    const vmid = await this.#id(owner, req.requestedId, req.used);
    const pool = this.#policy.pools?.[req.provider.name];
    if (!pool) return { vmid };
    const { ipv4 } = await pool.allocate({ owner, used: req.used });
    return { vmid, ipv4 };
  }

  async release(owner: string): Promise<void> {
    await this.#store.releaseOwner(owner);
  }

  async #id(owner: string, requested: number | undefined, used: UsedResources): Promise<number> {
    const { start, end } = this.#policy.idRange ?? { start: 100, end: 999_999 };
    const taken = new Set([...used.vmids].map(String));
    if (requested !== undefined) {
      if (await this.#store.claim({ pool: 'id', owner, value: String(requested), taken })) return requested;
      throw new ExhaustedError({ message: `id ${requested} is taken` });
    }
    function* candidates() {
      for (let n = start; n <= end; n++) yield String(n);
    }
    const got = await this.#store.allocate({ pool: 'id', owner, candidates: candidates(), taken });
    if (!got) throw new ExhaustedError({ message: `no free id in ${start}..${end}` });
    return Number(got.value);
  }
}
