import type { Instance, InstanceFull, InstanceState as LxdInstanceState } from '@vmplane/lxd';
import type { InstanceState, LxdRef } from '../../model/instance.js';
import type { ObservedGuest } from '../provider.js';

/**
 * LXD's instance status → hypeman's InstanceState. The table is also in STATES.md (the core README
 * links it); keep the two in step.
 *
 * `Running` is the backend's view: LXD says Running as soon as init is started, long before the
 * guest takes commands. `list()`/`get()` report what LXD says; the instance model shows
 * Initializing until the provider's `waitReady` has seen exec answer, and core promotes it then.
 */
const STATUS_MAP: Readonly<Record<string, InstanceState>> = {
  Running: 'Running',
  // LXD 5.x VMs whose agent has started report Ready; for us that is still Running.
  Ready: 'Running',
  // Unfrozen: running again.
  Thawed: 'Running',
  Stopped: 'Stopped',
  Frozen: 'Paused',
  // On its way to Frozen; nothing runs any more once it is asked to freeze.
  Freezing: 'Paused',
  Starting: 'Initializing',
  Pending: 'Initializing',
  'Operation created': 'Created',
  Created: 'Created',
  Stopping: 'Shutdown',
  Aborting: 'Shutdown',
  Cancelling: 'Shutdown',
  Error: 'Unknown',
};

/**
 * The state of an instance whose status LXD gave. A Stopped instance with saved state on disk
 * (`stateful: true`, CRIU) is hypeman's Standby: starting it resumes where it was.
 */
export function stateOf(status: string, stateful = false): InstanceState {
  const mapped = STATUS_MAP[status] ?? 'Unknown';
  return mapped === 'Stopped' && stateful ? 'Standby' : mapped;
}

/** Config keys vmplane writes on an instance. */
export const KEY_ID = 'user.vmplane.id';
export const KEY_IMAGE = 'user.vmplane.image';
/** The install operation that created the instance: its undo deletes only an instance carrying it. */
export const KEY_OPERATION = 'user.vmplane.operation';
export const TAG_PREFIX = 'user.vmplane.tag.';
export const ENV_PREFIX = 'environment.';

export function refOf(project: string, instance: Pick<Instance, 'name' | 'type'>): LxdRef {
  return {
    type: 'lxd',
    project,
    name: instance.name,
    kind: instance.type === 'virtual-machine' ? 'virtual-machine' : 'container',
  };
}

/** An instance as LXD shows it (recursion=1 on the instance, or recursion=2 on the list). */
export function observe(project: string, instance: InstanceFull, hostMemoryBytes?: number): ObservedGuest {
  const config = instance.expanded_config ?? instance.config ?? {};
  const guest: ObservedGuest = {
    ref: refOf(instance.project || project, instance),
    name: instance.name,
    state: stateOf(instance.status, instance.stateful),
    backendStatus: instance.status,
  };
  const ipv4 = primaryIpv4(instance.state);
  if (ipv4 !== undefined) guest.ipv4 = ipv4;
  const vcpus = parseCpuLimit(config['limits.cpu']);
  if (vcpus !== undefined) guest.vcpus = vcpus;
  const memory = parseMemoryLimit(config['limits.memory'], hostMemoryBytes);
  if (memory !== undefined) guest.memoryBytes = memory;
  const tags = tagsOf(instance.config ?? {});
  if (Object.keys(tags).length > 0) guest.tags = tags;
  return guest;
}

export function tagsOf(config: Readonly<Record<string, string>>): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key.startsWith(TAG_PREFIX) && key.length > TAG_PREFIX.length) tags[key.slice(TAG_PREFIX.length)] = value;
  }
  return tags;
}

/** vmplane's numeric id of an instance, when it wrote one. */
export function vmidOf(config: Readonly<Record<string, string>>): number | undefined {
  const raw = config[KEY_ID];
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  const id = Number(raw);
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * The guest's address: the first global IPv4 of eth0 (a container's interface, named by the nic
 * device). A VM's interfaces carry the guest's own names (enp5s0), so without eth0 the first
 * other interface with a global IPv4 answers.
 */
export function primaryIpv4(state: LxdInstanceState | null | undefined): string | undefined {
  const network = state?.network;
  if (!network) return undefined;
  const first = (name: string) =>
    network[name]?.addresses?.find((a) => a.family === 'inet' && a.scope === 'global')?.address;
  const eth0 = first('eth0');
  if (eth0 !== undefined) return eth0;
  for (const name of Object.keys(network).sort()) {
    if (name === 'lo') continue;
    const address = first(name);
    if (address !== undefined) return address;
  }
  return undefined;
}

/** Every IPv4 address an instance holds: live ones from its state and static ones of its nic devices. */
export function ipv4sOf(instance: InstanceFull): string[] {
  const out = new Set<string>();
  for (const [name, nic] of Object.entries(instance.state?.network ?? {})) {
    if (name === 'lo') continue;
    for (const a of nic.addresses ?? []) if (a.family === 'inet' && a.scope === 'global') out.add(a.address);
  }
  for (const device of Object.values(instance.expanded_devices ?? instance.devices ?? {})) {
    const address = device.type === 'nic' ? device['ipv4.address'] : undefined;
    if (address) out.add(address);
  }
  return [...out];
}

/**
 * `limits.cpu`: a count (`2`) or a set of CPUs to pin (`0-3`, `1,3,5-7`); the number of CPUs
 * either way. Undefined when unset or not understood.
 */
export function parseCpuLimit(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  let count = 0;
  for (const part of value.split(',')) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!range) return undefined;
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    if (to < from) return undefined;
    count += to - from + 1;
  }
  return count || undefined;
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  B: 1,
  kB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  PB: 1e15,
  EB: 1e18,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
  PiB: 2 ** 50,
  EiB: 2 ** 60,
};

/**
 * A size as LXD writes it (`512MiB`, `1GB`, `1073741824`) in bytes; `limits.memory` may also be a
 * share of the host (`50%`), which needs the host's memory. Undefined when not understood.
 */
export function parseMemoryLimit(value: string | undefined, hostBytes?: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (percent) return hostBytes === undefined ? undefined : Math.floor((hostBytes * Number(percent[1])) / 100);
  return parseSize(value);
}

export function parseSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(value.trim());
  if (!m) return undefined;
  const unit = UNITS[m[2] ?? ''];
  return unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}
