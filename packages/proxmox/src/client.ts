import type { Logger } from '@vmplane/common';
import type { ProxmoxCache } from './cache.js';
import { type ConsoleUrlOptions, consoleUrl } from './console.js';
import { checkNode, checkVmid, optionalMs } from './ids.js';
import { ClusterApi } from './resources/cluster.js';
import { type CacheTtls, Context, DEFAULT_TTLS } from './resources/context.js';
import { LxcApi } from './resources/lxc.js';
import { NodeApi } from './resources/node.js';
import { NodesApi } from './resources/nodes.js';
import { QemuApi } from './resources/qemu.js';
import { TasksApi } from './resources/tasks.js';
import { ProxmoxTransport, type ProxmoxClientOptions as TransportOptions, type TransportStats } from './transport.js';

export type ProxmoxClientOptions = TransportOptions & {
  /** Cache lifetimes per kind of read, in ms. */
  cacheTtl?: Partial<CacheTtls> | undefined;
};

/**
 * The Proxmox VE API client.
 *
 *   const pve = new ProxmoxClient({ baseUrl: 'https://pve.example.com:8006', tokenId: 'ci@pve!deploy', tokenSecret });
 *   const task = await pve.qemu('pve1', 100).start();
 *   await task.wait({ timeout: 60_000 });
 */
export class ProxmoxClient {
  readonly transport: ProxmoxTransport;
  readonly cluster: ClusterApi;
  readonly nodes: NodesApi;
  readonly tasks: TasksApi;
  readonly #ctx: Context;

  constructor(opts: ProxmoxClientOptions) {
    this.transport = new ProxmoxTransport(opts);
    const ttl = opts.cacheTtl ?? {};
    this.#ctx = new Context(this.transport, {
      cluster: optionalMs(ttl.cluster, 'cacheTtl.cluster') ?? DEFAULT_TTLS.cluster,
      node: optionalMs(ttl.node, 'cacheTtl.node') ?? DEFAULT_TTLS.node,
      guest: optionalMs(ttl.guest, 'cacheTtl.guest') ?? DEFAULT_TTLS.guest,
    });
    this.cluster = new ClusterApi(this.#ctx);
    this.nodes = new NodesApi(this.#ctx);
    this.tasks = new TasksApi(this.#ctx);
  }

  /** One node. Throws InvalidArgumentError (backend 'proxmox') for a name PVE would refuse. */
  node(name: string): NodeApi {
    return new NodeApi(this.#ctx, name);
  }

  /**
   * One VM, by VMID (a number, decimal digits, or `qemu/100` as /cluster/resources names it).
   * Throws InvalidArgumentError (backend 'proxmox') for a node or VMID PVE would refuse.
   */
  qemu(node: string, vmid: number | string): QemuApi {
    return new QemuApi(this.#ctx, node, vmid);
  }

  /** One container, by VMID (a number, decimal digits, or `lxc/200`); throws like `qemu()`. */
  lxc(node: string, vmid: number | string): LxcApi {
    return new LxcApi(this.#ctx, node, vmid);
  }

  get logger(): Logger {
    return this.transport.logger;
  }

  get cache(): ProxmoxCache {
    return this.transport.cache;
  }

  /** Requests sent, retries and cache hits so far. */
  get stats(): Readonly<TransportStats> {
    return this.transport.stats;
  }

  /** Forgets cached reads about one node and its guests (the seed's RefreshNodeData). */
  invalidateNode(node: string): void {
    this.#ctx.invalidateNode(checkNode(node));
  }

  /** Forgets cached reads about one guest (the seed's RefreshVMData). */
  invalidateGuest(node: string, vmid: number): void {
    this.#ctx.invalidateGuest(checkNode(node), checkVmid(vmid));
  }

  /** Forgets every cached read (the seed's ClearAPICache). */
  clearCache(): void {
    this.transport.cache.clear();
  }

  /** PVE's console page URL (noVNC or xterm.js) for a guest or a node shell. */
  consoleUrl(opts: ConsoleUrlOptions): string {
    return consoleUrl(this.transport.baseUrl, opts);
  }

  /** Closes idle connections; the client stays usable. */
  close(): void {
    this.transport.close();
  }
}
