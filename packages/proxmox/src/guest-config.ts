import { safeBool, safeInt } from './helpers.js';
import { parsePropertyString, parseSize } from './property-string.js';

export type GuestType = 'qemu' | 'lxc';

/** A network device from a guest's `net[n]` config line (the seed's ConfiguredNetwork, typed). */
export interface ConfiguredNetwork {
  /** `net0`, `net1`, ... */
  interface: string;
  index: number;
  /** QEMU: the NIC model (virtio, e1000, ...). LXC: the device type (veth). */
  model: string | undefined;
  /** LXC: the interface name inside the container (eth0). */
  name: string | undefined;
  macAddress: string | undefined;
  bridge: string | undefined;
  /** VLAN tag. */
  vlan: number | undefined;
  /** Rate limit in MB/s. */
  rate: number | undefined;
  mtu: number | undefined;
  /** LXC: static IPv4 with prefix, `dhcp` or `manual`. QEMU: from the matching `ipconfig[n]`. */
  ip: string | undefined;
  ip6: string | undefined;
  gateway: string | undefined;
  gateway6: string | undefined;
  firewall: boolean;
  linkDown: boolean;
  /** Every key of the line, as written. */
  options: Readonly<Record<string, string>>;
}

export type StorageBus = 'ide' | 'sata' | 'scsi' | 'virtio' | 'efidisk' | 'tpmstate' | 'rootfs' | 'mp' | 'unused';

/** A disk or mount point from a guest's config (the seed's StorageDevice, typed). */
export interface StorageDevice {
  /** `scsi0`, `virtio1`, `efidisk0`, `rootfs`, `mp0`, `unused0`, ... */
  device: string;
  bus: StorageBus;
  index: number;
  /** The whole volume reference: `local-lvm:vm-100-disk-0`, `/dev/sdb`, `none`. */
  volume: string;
  /** Storage id before the colon; undefined for host paths such as `/dev/disk/by-id/...`. */
  storage: string | undefined;
  size: string | undefined;
  sizeBytes: number | undefined;
  format: string | undefined;
  cache: string | undefined;
  discard: string | undefined;
  serial: string | undefined;
  media: string | undefined;
  isCdrom: boolean;
  iothread: boolean;
  ssd: boolean;
  readOnly: boolean;
  /** Included in backups: PVE's default is yes. */
  backup: boolean;
  /** Included in replication: PVE's default is yes. */
  replicate: boolean;
  /** LXC mount points: the path inside the container (`/` for rootfs). */
  mountPoint: string | undefined;
  options: Readonly<Record<string, string>>;
}

/** cloud-init `ipconfig[n]`: `ip=10.0.0.5/24,gw=10.0.0.1`. */
export interface IpConfig {
  interface: string;
  index: number;
  ip: string | undefined;
  gateway: string | undefined;
  ip6: string | undefined;
  gateway6: string | undefined;
}

export type RawConfig = Readonly<Record<string, string | number | boolean>>;

/** A guest's config with the parts people need parsed and the raw lines kept alongside. */
export interface GuestConfig {
  type: GuestType;
  raw: RawConfig;
  /** QEMU `name` or LXC `hostname`. */
  name: string | undefined;
  description: string | undefined;
  cores: number | undefined;
  sockets: number | undefined;
  /** Memory in MiB, as PVE writes it. */
  memoryMiB: number | undefined;
  /** LXC swap in MiB. */
  swapMiB: number | undefined;
  onboot: boolean;
  template: boolean;
  ostype: string | undefined;
  tags: readonly string[];
  /** QEMU guest agent enabled in config (`agent: 1` or `agent: enabled=1,...`). */
  agentEnabled: boolean;
  bootOrder: string | undefined;
  cpuType: string | undefined;
  /** The SHA1 of the config file, for `digest` on updates. */
  digest: string | undefined;
  networks: readonly ConfiguredNetwork[];
  disks: readonly StorageDevice[];
  ipConfigs: readonly IpConfig[];
}

const QEMU_NIC_MODELS = new Set([
  'virtio',
  'e1000',
  'e1000-82540em',
  'e1000-82544gc',
  'e1000-82545em',
  'e1000e',
  'i82551',
  'i82557b',
  'i82559er',
  'ne2k_isa',
  'ne2k_pci',
  'pcnet',
  'rtl8139',
  'vmxnet3',
]);

const optNumber = (v: string | undefined) => (v === undefined || v === '' ? undefined : safeInt(v, Number.NaN));
const finite = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? undefined : n);

export function parseNetwork(type: GuestType, key: string, line: string, ipConfig?: IpConfig): ConfiguredNetwork {
  const o = parsePropertyString(line);
  let model: string | undefined;
  let mac: string | undefined;
  if (type === 'qemu') {
    model = o.model;
    mac = o.macaddr;
    // QEMU writes the model as the key and the MAC as its value: `virtio=BC:24:11:...`.
    for (const m of QEMU_NIC_MODELS) {
      if (o[m] !== undefined) {
        model = m;
        mac = o[m] === '1' ? mac : o[m];
      }
    }
  } else {
    model = o.type ?? 'veth';
    mac = o.hwaddr;
  }
  return {
    interface: key,
    index: Number(key.replace(/^\D+/, '')),
    model,
    name: type === 'lxc' ? o.name : undefined,
    macAddress: mac,
    bridge: o.bridge,
    vlan: finite(optNumber(o.tag)),
    rate: o.rate === undefined ? undefined : Number(o.rate),
    mtu: finite(optNumber(o.mtu)),
    ip: type === 'lxc' ? o.ip : ipConfig?.ip,
    ip6: type === 'lxc' ? o.ip6 : ipConfig?.ip6,
    gateway: type === 'lxc' ? o.gw : ipConfig?.gateway,
    gateway6: type === 'lxc' ? o.gw6 : ipConfig?.gateway6,
    firewall: safeBool(o.firewall),
    linkDown: safeBool(o.link_down),
    options: o,
  };
}

const DISK_KEY = /^(ide|sata|scsi|virtio|efidisk|tpmstate|mp|unused)(\d+)$|^(rootfs)$/;

export function isDiskKey(type: GuestType, key: string): boolean {
  const m = DISK_KEY.exec(key);
  if (!m) return false;
  const bus = m[1] ?? m[3];
  return type === 'lxc' ? bus === 'rootfs' || bus === 'mp' || bus === 'unused' : bus !== 'rootfs' && bus !== 'mp';
}

export function parseStorageDevice(key: string, line: string): StorageDevice {
  const m = DISK_KEY.exec(key);
  const bus = (m?.[1] ?? m?.[3] ?? 'unused') as StorageBus;
  const o = parsePropertyString(line, bus === 'mp' || bus === 'rootfs' ? 'volume' : 'file');
  const volume = o.volume ?? o.file ?? '';
  const colon = volume.indexOf(':');
  const storage = volume.startsWith('/') || colon <= 0 ? undefined : volume.slice(0, colon);
  return {
    device: key,
    bus,
    index: m?.[2] === undefined ? 0 : Number(m[2]),
    volume,
    storage,
    size: o.size,
    sizeBytes: parseSize(o.size),
    format: o.format,
    cache: o.cache,
    discard: o.discard,
    serial: o.serial,
    media: o.media,
    isCdrom: o.media === 'cdrom',
    iothread: safeBool(o.iothread),
    ssd: safeBool(o.ssd),
    readOnly: safeBool(o.ro),
    backup: o.backup === undefined ? bus !== 'mp' : safeBool(o.backup),
    replicate: o.replicate === undefined ? true : safeBool(o.replicate),
    mountPoint: bus === 'rootfs' ? '/' : o.mp,
    options: o,
  };
}

export function parseIpConfig(key: string, line: string): IpConfig {
  const o = parsePropertyString(line);
  return {
    interface: key,
    index: Number(key.replace(/^\D+/, '')),
    ip: o.ip,
    gateway: o.gw,
    ip6: o.ip6,
    gateway6: o.gw6,
  };
}

const byIndex = <T extends { bus?: string; index: number }>(a: T, b: T) =>
  (a.bus ?? '').localeCompare(b.bus ?? '') || a.index - b.index;

/** Parses a `GET .../config` answer: networks, disks, mount points, cloud-init ipconfigs and the common scalars. */
export function parseGuestConfig(type: GuestType, raw: RawConfig): GuestConfig {
  const str = (k: string) => (raw[k] === undefined ? undefined : String(raw[k]));
  const ipConfigs: IpConfig[] = [];
  for (const [k, v] of Object.entries(raw)) if (/^ipconfig\d+$/.test(k)) ipConfigs.push(parseIpConfig(k, String(v)));
  ipConfigs.sort(byIndex);
  const networks: ConfiguredNetwork[] = [];
  const disks: StorageDevice[] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (/^net\d+$/.test(k)) {
      networks.push(
        parseNetwork(
          type,
          k,
          String(v),
          ipConfigs.find((c) => c.index === Number(k.slice(3))),
        ),
      );
    } else if (isDiskKey(type, k)) disks.push(parseStorageDevice(k, String(v)));
  }
  networks.sort(byIndex);
  disks.sort((a, b) => (a.bus === 'rootfs' ? -1 : b.bus === 'rootfs' ? 1 : byIndex(a, b)));
  const agent = raw.agent;
  const memory = str('memory');
  return {
    type,
    raw,
    name: str(type === 'qemu' ? 'name' : 'hostname'),
    description: str('description'),
    cores: raw.cores === undefined ? undefined : safeInt(raw.cores),
    sockets: raw.sockets === undefined ? undefined : safeInt(raw.sockets),
    // QEMU 8+ may write `memory: current=4096`.
    memoryMiB: memory === undefined ? undefined : safeInt(parsePropertyString(memory, 'current').current),
    swapMiB: raw.swap === undefined ? undefined : safeInt(raw.swap),
    onboot: safeBool(raw.onboot),
    template: safeBool(raw.template),
    ostype: str('ostype'),
    tags: (str('tags') ?? '').split(/[;, ]+/).filter(Boolean),
    agentEnabled: typeof agent === 'string' ? safeBool(parsePropertyString(agent, 'enabled').enabled) : safeBool(agent),
    bootOrder: str('boot'),
    cpuType: str('cpu'),
    digest: str('digest'),
    networks,
    disks,
    ipConfigs,
  };
}
