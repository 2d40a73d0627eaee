import type { LxdTransport } from '../transport.js';
import type { Network, NetworkLease, NetworkPut, NetworkState, NetworksPost } from '../types/api.js';
import type { LxdCallOptions } from './base.js';
import { Collection } from './collection.js';

export class Networks extends Collection<Network, NetworksPost & { name: string }, NetworkPut> {
  constructor(transport: LxdTransport) {
    super(transport, '/1.0/networks', 'network');
  }

  /** DHCP leases of a managed network (the gateway's own entries included). */
  async leases(name: string, opts: LxdCallOptions = {}): Promise<NetworkLease[]> {
    return this.call('GET', `${this.item(name)}/leases`, opts, {});
  }

  /** Link state, addresses and counters. */
  async state(name: string, opts: LxdCallOptions = {}): Promise<NetworkState> {
    return this.call('GET', `${this.item(name)}/state`, opts, {});
  }
}
