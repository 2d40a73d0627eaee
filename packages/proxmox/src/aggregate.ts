import type { GuestConfig, GuestType } from './guest-config.js';
import type {
  ClusterNodeStatus,
  ClusterResource,
  ClusterStatusEntry,
  GuestNetworkInterface,
  NodeStatus,
} from './types.js';

/** One guest of the cluster view, from /cluster/resources, enriched later with config and addresses. */
export interface ClusterGuest {
  readonly node: string;
  readonly vmid: number;
  readonly type: GuestType;
  readonly name: string;
  readonly status: string;
  readonly cpu: number;
  readonly maxcpu: number;
  readonly mem: number;
  readonly maxmem: number;
  readonly disk: number;
  readonly maxdisk: number;
  readonly uptime: number;
  readonly template: boolean;
  readonly tags: readonly string[];
  readonly lock: string | undefined;
  readonly pool: string | undefined;
  readonly hastate: string | undefined;
  /** Set once enrichment read the guest's config. */
  readonly config?: GuestConfig;
  /** From the guest agent or LXC, for a running guest that can tell. */
  readonly interfaces?: readonly GuestNetworkInterface[];
  /** First address that is neither loopback nor link-local. */
  readonly ip?: string;
  readonly enriched: boolean;
  /**
   * Why enrichment of this guest failed, if it did. `addresses: ...` when only the agent or
   * interfaces call failed (the config is there); a guest whose agent is not running simply has none.
   */
  readonly enrichError?: string;
}

export interface ClusterNode {
  readonly name: string;
  readonly online: boolean;
  readonly ip: string | undefined;
  readonly local: boolean;
  readonly cpu: number;
  readonly maxcpu: number;
  readonly mem: number;
  readonly maxmem: number;
  readonly disk: number;
  readonly maxdisk: number;
  readonly uptime: number;
  readonly level: string | undefined;
  /** Set once enrichment read `/nodes/{node}/status`. */
  readonly details?: NodeStatus;
  readonly enrichError?: string;
}

export interface ClusterStorage {
  /** Storage id (`local-lvm`, `ceph`). */
  readonly storage: string;
  readonly shared: boolean;
  /** Nodes that report it: all of them for a shared storage. */
  readonly nodes: readonly string[];
  readonly used: number;
  readonly total: number;
  readonly content: string | undefined;
  readonly plugintype: string | undefined;
  readonly status: string | undefined;
}

/** The seed's aggregated Cluster: totals over online nodes, storage with shared storage counted once. */
export interface Cluster {
  readonly name: string | undefined;
  readonly quorate: boolean;
  readonly totalNodes: number;
  readonly onlineNodes: number;
  /** Logical CPUs of online nodes, and their average usage (0..1). */
  readonly cpu: { readonly total: number; readonly usage: number };
  readonly memory: { readonly total: number; readonly used: number };
  readonly storage: { readonly total: number; readonly used: number; readonly count: number };
  readonly nodes: readonly ClusterNode[];
  readonly guests: readonly ClusterGuest[];
  readonly storages: readonly ClusterStorage[];
  /** PVE version of the first node that reported one (after enrichment). */
  readonly version: string | undefined;
}

export function clusterStatusFrom(entries: readonly ClusterStatusEntry[]): {
  name: string | undefined;
  quorate: boolean;
  version: number | undefined;
  nodes: ClusterNodeStatus[];
} {
  const cluster = entries.find((e) => e.type === 'cluster');
  const nodes = entries
    .filter((e) => e.type === 'node')
    .map((e) => ({
      name: e.name,
      id: e.id,
      ip: e.ip,
      online: Boolean(e.online),
      local: Boolean(e.local),
      nodeid: e.nodeid,
      level: e.level,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  // A standalone node has no cluster entry; it always has quorum.
  return { name: cluster?.name, quorate: cluster ? Boolean(cluster.quorate) : true, version: cluster?.version, nodes };
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export function guestFromResource(r: ClusterResource): ClusterGuest {
  return Object.freeze({
    node: r.node ?? '',
    vmid: num(r.vmid),
    type: r.type === 'lxc' ? 'lxc' : 'qemu',
    name: r.name ?? '',
    status: r.status ?? 'unknown',
    cpu: num(r.cpu),
    maxcpu: num(r.maxcpu),
    mem: num(r.mem),
    maxmem: num(r.maxmem),
    disk: num(r.disk),
    maxdisk: num(r.maxdisk),
    uptime: num(r.uptime),
    template: Boolean(r.template),
    tags: (r.tags ?? '').split(/[;, ]+/).filter(Boolean),
    lock: r.lock,
    pool: r.pool,
    hastate: r.hastate,
    enriched: false,
  });
}

/**
 * Storage aggregation: a shared storage (NFS, Ceph, ...) appears once per node in
 * /cluster/resources but holds one pool of bytes, so it is counted once; local storages count per node.
 */
export function aggregateStorage(resources: readonly ClusterResource[]): ClusterStorage[] {
  const byKey = new Map<string, { s: ClusterStorage; nodes: string[] }>();
  for (const r of resources) {
    if (r.type !== 'storage') continue;
    const storage = r.storage ?? r.id.split('/').pop() ?? r.id;
    const shared = Boolean(r.shared);
    const key = shared ? `shared/${storage}` : `${r.node}/${storage}`;
    const seen = byKey.get(key);
    if (seen) {
      if (r.node) seen.nodes.push(r.node);
      continue;
    }
    byKey.set(key, {
      nodes: r.node ? [r.node] : [],
      s: {
        storage,
        shared,
        nodes: [],
        used: num(r.disk),
        total: num(r.maxdisk),
        content: r.content,
        plugintype: r.plugintype,
        status: r.status,
      },
    });
  }
  return [...byKey.values()]
    .map(({ s, nodes }) => Object.freeze({ ...s, nodes: Object.freeze(nodes.sort()) }))
    .sort((a, b) => a.storage.localeCompare(b.storage) || (a.nodes[0] ?? '').localeCompare(b.nodes[0] ?? ''));
}

/** Builds the aggregated Cluster from /cluster/status and /cluster/resources (plus node details when known). */
export function aggregateCluster(
  statusEntries: readonly ClusterStatusEntry[],
  resources: readonly ClusterResource[],
  extra: {
    nodeDetails?: ReadonlyMap<string, NodeStatus>;
    nodeErrors?: ReadonlyMap<string, string>;
    guests?: readonly ClusterGuest[];
  } = {},
): Cluster {
  const status = clusterStatusFrom(statusEntries);
  const nodeResources = new Map(resources.filter((r) => r.type === 'node').map((r) => [r.node ?? '', r]));
  const names = new Set([...status.nodes.map((n) => n.name), ...nodeResources.keys()].filter(Boolean));
  const nodes: ClusterNode[] = [...names].sort().map((name) => {
    const s = status.nodes.find((n) => n.name === name);
    const r = nodeResources.get(name);
    const details = extra.nodeDetails?.get(name);
    const error = extra.nodeErrors?.get(name);
    const node: ClusterNode = {
      name,
      online: s ? s.online : r?.status === 'online',
      ip: s?.ip,
      local: s?.local ?? false,
      cpu: details ? num(details.cpu) : num(r?.cpu),
      maxcpu: details ? num(details.cpuinfo?.cpus) : num(r?.maxcpu),
      mem: details ? num(details.memory?.used) : num(r?.mem),
      maxmem: details ? num(details.memory?.total) : num(r?.maxmem),
      disk: num(r?.disk),
      maxdisk: num(r?.maxdisk),
      uptime: details ? num(details.uptime) : num(r?.uptime),
      level: s?.level ?? r?.level,
      ...(details ? { details } : {}),
      ...(error ? { enrichError: error } : {}),
    };
    return Object.freeze(node);
  });
  const online = nodes.filter((n) => n.online);
  const withCpu = online.filter((n) => n.maxcpu > 0);
  const storages = aggregateStorage(resources);
  const guests =
    extra.guests ??
    resources
      .filter((r) => r.type === 'qemu' || r.type === 'lxc')
      .map(guestFromResource)
      .sort((a, b) => a.vmid - b.vmid);
  const version = [...(extra.nodeDetails?.values() ?? [])].find((d) => typeof d.pveversion === 'string')?.pveversion;
  return Object.freeze({
    name: status.name,
    quorate: status.quorate,
    totalNodes: nodes.length,
    onlineNodes: online.length,
    cpu: {
      total: withCpu.reduce((a, n) => a + n.maxcpu, 0),
      usage: withCpu.length ? withCpu.reduce((a, n) => a + n.cpu, 0) / withCpu.length : 0,
    },
    memory: { total: online.reduce((a, n) => a + n.maxmem, 0), used: online.reduce((a, n) => a + n.mem, 0) },
    storage: {
      total: storages.reduce((a, s) => a + s.total, 0),
      used: storages.reduce((a, s) => a + s.used, 0),
      count: storages.length,
    },
    nodes: Object.freeze(nodes),
    guests: Object.freeze([...guests]),
    storages: Object.freeze(storages),
    version,
  });
}
