import { ServerError } from '@vmplane/common';
import { cacheTags } from '../cache.js';
import { BACKEND } from '../errors.js';
import { Task } from '../task.js';
import type { ProxmoxTransport } from '../transport.js';
import { isUpid } from '../upid.js';

/** Default cache lifetimes (ms) per kind of read. */
export interface CacheTtls {
  /** Cluster status, resources, nodes list, version. */
  cluster: number;
  /** Node status, network, storage, guest lists. */
  node: number;
  /** Guest configs. */
  guest: number;
}

export const DEFAULT_TTLS: CacheTtls = { cluster: 10_000, node: 15_000, guest: 30_000 };

/** What every resource group shares: the transport, cache policy and invalidation. */
export class Context {
  constructor(
    readonly t: ProxmoxTransport,
    readonly ttl: CacheTtls,
  ) {}

  clusterCache() {
    return { ttl: this.ttl.cluster, tags: [cacheTags.cluster] };
  }
  nodeCache(node: string) {
    return { ttl: this.ttl.node, tags: [cacheTags.cluster, cacheTags.node(node)] };
  }
  guestCache(node: string, vmid: number) {
    return { ttl: this.ttl.guest, tags: [cacheTags.node(node), cacheTags.guest(vmid)] };
  }

  invalidateCluster(): void {
    this.t.cache.invalidate(cacheTags.cluster);
  }
  invalidateNode(node: string): void {
    this.t.cache.invalidate(cacheTags.node(node));
    this.t.cache.invalidate(cacheTags.cluster);
  }
  /** A guest changed: forget its config, its node's lists and the cluster-wide views. */
  invalidateGuest(node: string, vmid: number): void {
    this.t.cache.invalidate(cacheTags.guest(vmid));
    this.invalidateNode(node);
  }

  /** A task that also drops the guest's cache entries when it finishes. */
  guestTask(upid: unknown, node: string, vmid: number): Task {
    this.invalidateGuest(node, vmid);
    return new Task(this.t, checkedUpid(upid), () => this.invalidateGuest(node, vmid));
  }
  nodeTask(upid: unknown, node: string): Task {
    this.invalidateNode(node);
    return new Task(this.t, checkedUpid(upid), () => this.invalidateNode(node));
  }
}

// A call that starts a task answers with its UPID; anything else is the server's fault, not the caller's.
function checkedUpid(upid: unknown): string {
  if (isUpid(upid)) return upid;
  throw new ServerError({
    status: 200,
    backend: BACKEND,
    message: `PVE answered without a task id (UPID): ${JSON.stringify(upid)?.slice(0, 120)}`,
    body: upid,
  });
}
