/**
 * The instance model: hypeman's `Instance` (its OpenAPI schema, field for field, snake_case as on the
 * wire) plus where the guest lives, `provider` and `ref`. The server serves these objects as they
 * are, so a field's name here is its name in hypeman's API.
 */

export const INSTANCE_STATES = [
  'Created',
  'Initializing',
  'Running',
  'Paused',
  'Shutdown',
  'Stopped',
  'Standby',
  'Unknown',
] as const;

/** hypeman's `InstanceState`. */
export type InstanceState = (typeof INSTANCE_STATES)[number];

export function isInstanceState(value: unknown): value is InstanceState {
  return typeof value === 'string' && (INSTANCE_STATES as readonly string[]).includes(value);
}

/** Where an LXD guest lives: the project and the instance's name there. */
export interface LxdRef {
  type: 'lxd';
  project: string;
  name: string;
  kind: 'container' | 'virtual-machine';
  /** The numeric id vmplane allocated (go-pve-qemu's `id`, which its `/api/vm/:id` routes take). */
  vmid?: number;
}

/** Where a Proxmox guest lives: its node and VMID, as a QEMU VM or an LXC container. */
export interface ProxmoxRef {
  type: 'proxmox';
  node: string;
  vmid: number;
  kind: 'qemu' | 'lxc';
}

/** The backend's own name for a guest, one variant per provider type. */
export type ProviderRef = LxdRef | ProxmoxRef;

export type ProviderType = ProviderRef['type'];

/** hypeman's `Instance`, plus vmplane's `provider` (the configured provider's name) and `ref`. */
export interface Instance {
  id: string;
  name: string;
  image: string;
  state: InstanceState;
  state_error?: string;
  /** Memory, as hypeman writes it (`2GB`, `512MB`). */
  size?: string;
  vcpus?: number;
  env: Record<string, string>;
  tags: Record<string, string>;
  network?: InstanceNetwork;
  created_at: string;
  /** hypeman requires the field; an instance without a TTL has `null`. */
  expires_at: string | null;
  started_at?: string;
  stopped_at?: string;
  exit_code?: number;
  exit_message?: string;
  has_snapshot?: boolean;
  hypervisor?: 'cloud-hypervisor' | 'firecracker' | 'qemu' | 'qemu-microvm' | 'vz';
  current_phase?: string;
  current_phase_since?: string;
  phase_durations_ms?: Record<string, number>;
  /** vmplane: the configured provider's name (`lxd`, `lab`, ...). */
  provider: string;
  /** vmplane: the backend's own name for the guest. */
  ref: ProviderRef;
}

export interface InstanceNetwork {
  enabled?: boolean;
  ip?: string;
  mac?: string;
  name?: string;
}

/** One stable string per guest, for lookups: `lxd/<project>/<name>`, `proxmox/<vmid>`. */
export function refKey(ref: ProviderRef): string {
  // A VMID is unique across a Proxmox cluster, whatever node the guest is on (migration moves it).
  return ref.type === 'lxd' ? `lxd/${ref.project}/${ref.name}` : `proxmox/${ref.vmid}`;
}
