/**
 * Named property-string formats: PVE registers these as hashes (`register_format(name, {...})`),
 * and the apidoc names them without their keys. Their keys are written here as PVE's modules
 * define them, in the schema dialect the simulator validates.
 */
import type { PveJsonSchema } from '../apidoc.js';
import { type Problem, problem } from '../problem.js';

/** A hash format: its keys, and a check across keys where PVE makes one after parsing. */
export interface HashFormat {
  keys: Record<string, PveJsonSchema>;
  check?: (parsed: Record<string, string>) => Problem | undefined;
}

const opt = (schema: PveJsonSchema): PveJsonSchema => ({ ...schema, optional: 1 });
const bool = opt({ type: 'boolean' });
const int = (minimum?: number, maximum?: number): PveJsonSchema =>
  opt({
    type: 'integer',
    ...(minimum !== undefined ? { minimum } : {}),
    ...(maximum !== undefined ? { maximum } : {}),
  });
const str = (extra: PveJsonSchema = {}): PveJsonSchema => opt({ type: 'string', ...extra });
const required = (schema: PveJsonSchema): PveJsonSchema => {
  const { optional: _optional, ...rest } = schema;
  return rest;
};

const PCI_ID = '(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?';
const HEX_ID = '^0x[0-9a-fA-F]{4}$';
const BASE64 = '[A-Za-z0-9+\\/]+={0,2}';
const CPU_FLAG = '[+-][a-zA-Z0-9\\-_\\.]+';

const PRUNE_KEEP = ['keep-last', 'keep-hourly', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly'];

export const HASH_FORMATS: Record<string, HashFormat> = {
  'backup-fleecing': {
    keys: { enabled: { ...bool, default_key: 1 }, storage: str({ format: 'pve-storage-id' }) },
  },
  'backup-performance': {
    keys: { 'max-workers': int(1, 256), 'pbs-entries-max': int(1) },
  },
  'proxmox-remote': {
    keys: {
      host: required(str({ format: 'address' })),
      port: int(1, 65535),
      apitoken: required(str()),
      fingerprint: str({ pattern: '([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}' }),
    },
  },
  'prune-backups': {
    keys: { 'keep-all': bool, ...Object.fromEntries(PRUNE_KEEP.map((k) => [k, int(1)])) },
    check: (p) =>
      p['keep-all'] !== undefined && PRUNE_KEEP.some((k) => p[k] !== undefined)
        ? problem('keep-all cannot be set together with other options.')
        : undefined,
  },
  'pve-qemu-sev-fmt': {
    keys: {
      type: { type: 'string', enum: ['std', 'es', 'snp'], default_key: 1 },
      'no-debug': bool,
      'no-key-sharing': bool,
      'allow-smt': bool,
      'kernel-hashes': bool,
    },
  },
  // The TDX types are not in the apidoc; the key set is.
  'pve-qemu-tdx-fmt': {
    keys: {
      type: { type: 'string', pattern: '[a-z0-9-]+', default_key: 1 },
      attestation: { type: 'boolean' },
      'vsock-cid': int(2),
      'vsock-port': int(1),
    },
  },
  'pve-qm-boot': {
    keys: {
      legacy: str({ pattern: '[acdn]{1,4}', default_key: 1 }),
      order: str({ format: 'pve-qm-bootdev-list' }),
    },
  },
  'pve-qm-cicustom': {
    keys: Object.fromEntries(['meta', 'network', 'user', 'vendor'].map((k) => [k, str({ format: 'pve-volume-id' })])),
  },
  'pve-qm-hostpci': {
    keys: {
      host: str({ pattern: `${PCI_ID}(?:;${PCI_ID})*`, default_key: 1 }),
      mapping: str({ format: 'pve-configid' }),
      rombar: bool,
      romfile: str(),
      pcie: bool,
      'x-vga': bool,
      'legacy-igd': bool,
      mdev: str(),
      'vendor-id': str({ pattern: HEX_ID }),
      'device-id': str({ pattern: HEX_ID }),
      'sub-vendor-id': str({ pattern: HEX_ID }),
      'sub-device-id': str({ pattern: HEX_ID }),
      driver: str({ enum: ['vfio', 'keep'] }),
    },
    check: (p) =>
      (p.host === undefined) === (p.mapping === undefined)
        ? problem("exactly one of 'host' or 'mapping' must be set")
        : undefined,
  },
  'pve-qm-ipconfig': {
    keys: {
      ip: str({ format: 'pve-ipv4-config' }),
      gw: str({ format: 'ipv4' }),
      ip6: str({ format: 'pve-ipv6-config' }),
      gw6: str({ format: 'ipv6' }),
    },
  },
  'pve-qm-rng': {
    keys: {
      source: { type: 'string', enum: ['/dev/urandom', '/dev/random', '/dev/hwrng'], default_key: 1 },
      max_bytes: int(),
      period: int(),
    },
  },
  'pve-qm-smbios1': {
    keys: {
      uuid: str({ pattern: '[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}' }),
      base64: bool,
      ...Object.fromEntries(
        ['version', 'serial', 'manufacturer', 'product', 'sku', 'family'].map((k) => [k, str({ pattern: BASE64 })]),
      ),
    },
  },
  'pve-qm-watchdog': {
    keys: {
      model: str({ enum: ['i6300esb', 'ib700'], default_key: 1 }),
      action: str({ enum: ['reset', 'shutdown', 'poweroff', 'pause', 'debug', 'none'] }),
    },
  },
  'pve-sdn-dhcp-range': {
    keys: { 'start-address': { type: 'string', format: 'ip' }, 'end-address': { type: 'string', format: 'ip' } },
  },
  'pve-tfa-config': {
    keys: {
      type: { type: 'string', enum: ['yubico', 'oath'], default_key: 1 },
      id: str(),
      key: str(),
      url: str(),
      digits: int(6, 8),
      step: int(10),
    },
  },
  // Model names are QEMU's and change per release: they are checked by shape.
  'pve-vm-cpu-conf': {
    keys: {
      cputype: str({ pattern: '(?:custom-)?[A-Za-z0-9_.+-]+', default_key: 1 }),
      'reported-model': str({ pattern: '[A-Za-z0-9_.+-]+' }),
      hidden: bool,
      'hv-vendor-id': str({ pattern: '[a-zA-Z0-9]{1,12}' }),
      flags: str({ pattern: `${CPU_FLAG}(;${CPU_FLAG})*` }),
      'phys-bits': str({ format: 'pve-phys-bits' }),
      'guest-phys-bits': int(32, 64),
    },
  },
  'realm-sync-options': {
    keys: {
      scope: str({ enum: ['users', 'groups', 'both'] }),
      'remove-vanished': str({ pattern: '(?:(?:(?:acl|properties|entry);)*(?:acl|properties|entry))|none' }),
      full: bool,
      'enable-new': bool,
      purge: bool,
    },
  },
};

/**
 * Hash formats whose keys the apidoc itself spells out elsewhere: `cdrom` is an IDE drive
 * (`pve-qm-ide`), and the schema's own `ide[n]` carries that drive format. Looked up in whatever
 * schema is loaded, so another PVE version brings its own.
 */
export const BORROWED_HASH_FORMATS: Record<string, { path: string; method: string; param: string }> = {
  'pve-qm-ide': { path: '/nodes/{node}/qemu', method: 'POST', param: 'ide[n]' },
};
