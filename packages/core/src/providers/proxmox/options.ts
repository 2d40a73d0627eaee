import { InvalidArgumentError } from '@vmplane/common';
import { ProxmoxClient, type ProxmoxClientOptions } from '@vmplane/proxmox';
import { type CatalogueOptions, ImageCatalogue } from '../../images/catalogue.js';
import { type SharedDownloads, sharedDownloads } from './downloads.js';

/** How a Proxmox provider is set up: which cluster, where disks and images go, how guests are reached. */
export interface ProxmoxProviderOptions {
  /** The configured name (`pve`, `lab`). */
  name: string;
  /** A client, or the options to make one (the provider then owns and closes it). */
  client: ProxmoxClient | ProxmoxClientOptions;
  /** Where VM disks and cloud-init drives go (go-pve-qemu's ASSIGN_STORAGE); default `local-lvm`. */
  storage?: string;
  /** Where `download-url` puts cloud images (content `import`); default `local`. */
  imageStorage?: string;
  /** Where guests are made (go-pve-qemu's MAIN_NODE); default the first online node by name. */
  mainNode?: string;
  /** The cloud-image catalogue, or its options (mirrors). */
  catalogue?: ImageCatalogue | CatalogueOptions;
  /** Where vmplane's SSH key lives (`<dataDir>/ssh`). */
  sshKeyDir: string;
  /** How an install decides a VM is up: SSH (default) or the guest agent. */
  readiness?: 'ssh' | 'agent';
  /** The port guests serve SSH on; default 22. */
  sshPort?: number;
  /** Deadline of each wait for a booting VM, in ms; default 5 min. */
  bootTimeoutMs?: number;
  /** The guests' network: `ipconfig0` is `ip=<allocated>/<prefixLength>,gw=<gateway>`. */
  network: {
    gateway: string;
    /** Default 24. */
    prefixLength?: number;
    /** Default `vmbr0`. */
    bridge?: string;
    /** cloud-init DNS servers; PVE's (the node's) when absent. */
    nameserver?: string;
  };
  /**
   * go-pve-qemu's VM_BALLOON_MIN: the least memory (MiB) a VM keeps when the host reclaims some
   * through the balloon. Without it a VM's memory is fixed (`balloon` left at PVE's default).
   */
  balloonMinMiB?: number;
  /** Largest disk an install may ask for, in GiB. */
  maxDiskGiB?: number;
  /** Commands the SSH initialization runs last, as root (a package mirror, a time zone): none by default. */
  initCommands?: readonly string[];
  /** Download deadline, in ms; default 1 h. */
  downloadTimeoutMs?: number;
  /** The registry of image downloads shared between installs; the process's own by default. */
  downloads?: SharedDownloads;
}

export interface ResolvedOptions {
  name: string;
  client: ProxmoxClient;
  ownsClient: boolean;
  storage: string;
  imageStorage: string;
  mainNode: string | undefined;
  catalogue: ImageCatalogue;
  sshKeyDir: string;
  readiness: 'ssh' | 'agent';
  sshPort: number;
  bootTimeoutMs: number;
  gateway: string;
  prefixLength: number;
  bridge: string;
  nameserver: string | undefined;
  balloonMinMiB: number | undefined;
  maxDiskGiB: number | undefined;
  initCommands: readonly string[];
  downloadTimeoutMs: number;
  downloads: SharedDownloads;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(value: unknown): value is string {
  return typeof value === 'string' && IPV4.test(value);
}

function positive(value: number | undefined, argument: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError({ message: `${argument} must be an integer from 1 to ${max}`, argument });
  }
  return value;
}

export function resolveOptions(opts: ProxmoxProviderOptions): ResolvedOptions {
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidArgumentError({ message: 'options are required', argument: 'options' });
  }
  if (typeof opts.name !== 'string' || !/^[a-z0-9][a-z0-9_-]*$/i.test(opts.name)) {
    throw new InvalidArgumentError({ message: 'name must be a word (letters, digits, - and _)', argument: 'name' });
  }
  if (typeof opts.sshKeyDir !== 'string' || opts.sshKeyDir === '') {
    throw new InvalidArgumentError({ message: 'sshKeyDir is required (<dataDir>/ssh)', argument: 'sshKeyDir' });
  }
  if (!isIpv4(opts.network?.gateway)) {
    throw new InvalidArgumentError({ message: 'network.gateway must be an IPv4 address', argument: 'network.gateway' });
  }
  if (opts.readiness !== undefined && opts.readiness !== 'ssh' && opts.readiness !== 'agent') {
    throw new InvalidArgumentError({ message: "readiness must be 'ssh' or 'agent'", argument: 'readiness' });
  }
  const owns = !(opts.client instanceof ProxmoxClient);
  const client = opts.client instanceof ProxmoxClient ? opts.client : new ProxmoxClient(opts.client);
  const catalogue = opts.catalogue instanceof ImageCatalogue ? opts.catalogue : new ImageCatalogue(opts.catalogue);
  return {
    name: opts.name,
    client,
    ownsClient: owns,
    storage: opts.storage ?? 'local-lvm',
    imageStorage: opts.imageStorage ?? 'local',
    mainNode: opts.mainNode,
    catalogue,
    sshKeyDir: opts.sshKeyDir,
    readiness: opts.readiness ?? 'ssh',
    sshPort: positive(opts.sshPort, 'sshPort', 65_535) ?? 22,
    bootTimeoutMs: positive(opts.bootTimeoutMs, 'bootTimeoutMs') ?? 5 * 60_000,
    gateway: opts.network.gateway,
    prefixLength: positive(opts.network.prefixLength, 'network.prefixLength', 32) ?? 24,
    bridge: opts.network.bridge ?? 'vmbr0',
    nameserver: opts.network.nameserver,
    balloonMinMiB: positive(opts.balloonMinMiB, 'balloonMinMiB'),
    maxDiskGiB: positive(opts.maxDiskGiB, 'maxDiskGiB'),
    initCommands: [...(opts.initCommands ?? [])],
    downloadTimeoutMs: positive(opts.downloadTimeoutMs, 'downloadTimeoutMs') ?? 60 * 60_000,
    downloads: opts.downloads ?? sharedDownloads,
  };
}
