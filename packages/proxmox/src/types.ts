/**
 * Hand-written types for the API objects this client reads, named after PVE's own objects.
 * Optional fields are the ones PVE leaves out depending on type, state or version.
 */

export type GuestStatusName = 'running' | 'stopped' | 'paused' | 'suspended' | 'prelaunch' | 'unknown' | (string & {});

/** An entry of `GET /cluster/status`: the cluster itself or one node. */
export interface ClusterStatusEntry {
  type: 'cluster' | 'node';
  id: string;
  name: string;
  /** cluster */
  quorate?: boolean;
  nodes?: number;
  version?: number;
  /** node */
  ip?: string;
  online?: boolean;
  local?: boolean;
  nodeid?: number;
  level?: string;
}

export interface ClusterNodeStatus {
  name: string;
  id: string;
  ip: string | undefined;
  online: boolean;
  local: boolean;
  nodeid: number | undefined;
  level: string | undefined;
}

/** `GET /cluster/status`, read: a standalone node has no `cluster` entry and counts as quorate. */
export interface ClusterStatus {
  /** Cluster name; undefined for a standalone node. */
  name: string | undefined;
  quorate: boolean;
  /** corosync config version. */
  version: number | undefined;
  nodes: readonly ClusterNodeStatus[];
  totalNodes: number;
  onlineNodes: number;
}

export type ClusterResourceType = 'node' | 'storage' | 'qemu' | 'lxc' | 'pool' | 'sdn' | 'network' | (string & {});

/** An entry of `GET /cluster/resources`. */
export interface ClusterResource {
  id: string;
  type: ClusterResourceType;
  node?: string;
  status?: string;
  name?: string;
  vmid?: number;
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
  uptime?: number;
  netin?: number;
  netout?: number;
  diskread?: number;
  diskwrite?: number;
  template?: boolean;
  tags?: string;
  lock?: string;
  pool?: string;
  hastate?: string;
  storage?: string;
  shared?: boolean;
  content?: string;
  plugintype?: string;
  level?: string;
}

/** `GET /version`. */
export interface Version {
  version: string;
  release: string;
  repoid: string;
  console?: string;
}

/** `GET /cluster/tasks` and `GET /nodes/{node}/tasks` entries. */
export interface TaskSummary {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  starttime: number;
  endtime?: number;
  status?: string;
  pid?: number;
  pstart?: number;
}

/** `GET /nodes` entries. */
export interface NodeSummary {
  node: string;
  status: 'online' | 'offline' | 'unknown';
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  uptime?: number;
  level?: string;
  ssl_fingerprint?: string;
}

/** `GET /nodes/{node}/status`. */
export interface NodeStatus {
  cpu: number;
  uptime: number;
  loadavg: readonly string[];
  kversion?: string;
  pveversion?: string;
  cpuinfo: { cores: number; cpus: number; model: string; sockets: number; mhz?: string };
  memory: { free: number; total: number; used: number; available?: number };
  swap?: { free: number; total: number; used: number };
  rootfs?: { avail: number; free: number; total: number; used: number };
  'current-kernel'?: { machine: string; release: string; sysname: string; version: string };
  'boot-info'?: { mode: 'efi' | 'legacy-bios'; secureboot?: boolean };
  [key: string]: unknown;
}

/** `GET /nodes/{node}/network` entries. */
export interface NodeNetworkInterface {
  iface: string;
  type: string;
  active?: boolean;
  autostart?: boolean;
  address?: string;
  netmask?: string;
  cidr?: string;
  gateway?: string;
  address6?: string;
  cidr6?: string;
  bridge_ports?: string;
  comments?: string;
  method?: string;
  [key: string]: unknown;
}

/** `GET /nodes/{node}/storage` entries. */
export interface Storage {
  storage: string;
  type: string;
  content: string;
  active?: boolean;
  enabled?: boolean;
  shared?: boolean;
  total?: number;
  used?: number;
  avail?: number;
  used_fraction?: number;
}

/** `GET /nodes/{node}/storage/{storage}/content` entries. */
export interface StorageContent {
  volid: string;
  format: string;
  size: number;
  content?: string;
  ctime?: number;
  vmid?: number;
  used?: number;
  notes?: string;
  parent?: string;
  protected?: boolean;
}

/** Fields both `GET /nodes/{node}/qemu` and `.../lxc` list, and both status endpoints answer. */
export interface GuestStatusCommon {
  vmid: number;
  status: GuestStatusName;
  name?: string;
  cpu?: number;
  cpus?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
  uptime?: number;
  netin?: number;
  netout?: number;
  diskread?: number;
  diskwrite?: number;
  lock?: string;
  tags?: string;
  template?: boolean;
  pid?: number;
}

/** `GET /nodes/{node}/qemu/{vmid}/status/current`. */
export interface QemuStatus extends GuestStatusCommon {
  qmpstatus?: string;
  agent?: boolean;
  'running-machine'?: string;
  'running-qemu'?: string;
  ha?: { managed: boolean | number; state?: string };
  [key: string]: unknown;
}

/** `GET /nodes/{node}/lxc/{vmid}/status/current`. */
export interface LxcStatus extends GuestStatusCommon {
  type?: 'lxc';
  maxswap?: number;
  swap?: number;
  ha?: { managed: boolean | number; state?: string };
  [key: string]: unknown;
}

/** Snapshot list entries; `current` is the live state. */
export interface Snapshot {
  name: string;
  description: string;
  parent?: string;
  snaptime?: number;
  vmstate?: boolean;
}

/** `POST .../vncproxy` and `POST /nodes/{node}/vncshell`. */
export interface VncProxy {
  port: number;
  ticket: string;
  user: string;
  cert: string;
  upid: string;
  /** One-time VNC password (PVE generates it when the websocket needs one). */
  password?: string;
}

/** `POST .../termproxy` (xterm.js). */
export interface TermProxy {
  port: number;
  ticket: string;
  user: string;
  upid: string;
}

/** Guest agent `network-get-interfaces` entries and `GET .../lxc/{vmid}/interfaces` entries. */
export interface GuestNetworkInterface {
  name: string;
  'hardware-address'?: string;
  hwaddr?: string;
  'ip-addresses'?: { 'ip-address': string; 'ip-address-type': 'ipv4' | 'ipv6' | (string & {}); prefix?: number }[];
  inet?: string;
  inet6?: string;
  statistics?: Record<string, number>;
}

/** Guest agent `get-fsinfo` entries. */
export interface GuestFilesystem {
  name: string;
  mountpoint: string;
  type: string;
  'total-bytes'?: number;
  'used-bytes'?: number;
  disk?: { 'bus-type'?: string; serial?: string; dev?: string; [key: string]: unknown }[];
}

/** Guest agent `exec-status`. */
export interface AgentExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

/** What `agent.execute` returns. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Set when the process was killed by a signal. */
  signal?: number;
  /** The agent cut stdout or stderr short. */
  truncated: boolean;
}

/** `GET /nodes/{node}/qemu/{vmid}/migrate`: PVE's own migration preconditions. */
export interface QemuMigratePrecondition {
  running: boolean;
  /** Nodes an offline migration may target (PVE lists them only for a stopped VM). */
  allowed_nodes?: string[];
  /** Nodes that cannot take the VM, with the reasons. */
  not_allowed_nodes?: Record<string, MigrateRefusal>;
  local_disks: Array<{ volid: string; size?: number; cdrom?: boolean | number; is_unused?: boolean | number }>;
  /** Local resources (PCI, USB devices) that block a migration. */
  local_resources: string[];
  'mapped-resources'?: string[];
}

/** `GET /nodes/{node}/lxc/{vmid}/migrate`. */
export interface LxcMigratePrecondition {
  running: boolean;
  'allowed-nodes'?: string[];
  'not-allowed-nodes'?: Record<string, MigrateRefusal>;
}

/** Why PVE will not migrate a guest to one node. */
export interface MigrateRefusal {
  unavailable_storages?: string[];
  'blocking-ha-resources'?: Array<{ sid: string; cause: string }>;
}
