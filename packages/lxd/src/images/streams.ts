/**
 * SimpleStreams documents (`streams/v1/index.json` and its products files) and how LXD reads them:
 * which items make an image, its fingerprint, its aliases and which version an alias points to.
 * Pure functions, so they are tested without a server.
 */
import type { Image, ImageAlias, ImageAliasesEntry } from '../types/api.js';

/** `streams/v1/index.json`. */
export interface StreamIndex {
  format: string;
  updated?: string;
  index: Record<string, StreamIndexEntry>;
}

export interface StreamIndexEntry {
  /** `image-downloads` for image lists; other datatypes are ignored. */
  datatype: string;
  /** Products file, relative to the server's root, e.g. `streams/v1/images.json`. */
  path: string;
  updated?: string;
  products: string[];
  format?: string;
}

/** A products file (`products:1.0`). */
export interface Products {
  content_id: string;
  datatype: string;
  format: string;
  license?: string;
  updated?: string;
  products: Record<string, Product>;
}

export interface Product {
  /** Comma-separated aliases, e.g. `alpine/3.19,alpine/3.19/default`. */
  aliases?: string;
  /** Debian-style (`amd64`) or kernel-style (`x86_64`) architecture. */
  arch: string;
  os: string;
  release: string;
  release_codename?: string;
  release_title?: string;
  supported?: boolean;
  /** `YYYY-MM-DD`. */
  support_eol?: string;
  version?: string;
  /** Non-standard, images.linuxcontainers.org: `default`, `cloud`, ... */
  variant?: string;
  lxd_requirements?: Record<string, string>;
  /** Keyed by serial: `20240101_00:00`, `20240101`; newer serials sort higher as strings. */
  versions: Record<string, ProductVersion>;
}

export interface ProductVersion {
  items: Record<string, ProductItem>;
  label?: string;
  pubname?: string;
}

/** Item file types LXD knows; others are ignored. */
export type ItemFileType =
  | 'lxd.tar.xz'
  | 'lxd_combined.tar.gz'
  | 'squashfs'
  | 'squashfs.vcdiff'
  | 'root.tar.xz'
  | 'disk-kvm.img'
  | 'disk1.img'
  | 'uefi1.img'
  | (string & {});

export interface ProductItem {
  ftype: ItemFileType;
  path: string;
  size: number;
  sha256?: string;
  md5?: string;
  /** On the `lxd.tar.xz` item: sha256 of metadata||rootfs for each kind of rootfs, i.e. the LXD fingerprint. */
  combined_sha256?: string;
  combined_squashfs_sha256?: string;
  combined_rootxz_sha256?: string;
  'combined_disk-kvm-img_sha256'?: string;
  'combined_disk1-img_sha256'?: string;
  'combined_uefi1-img_sha256'?: string;
  delta_base?: string;
}

/** A file to download, with the sha256 it must have. */
export interface DownloadableFile {
  path: string;
  sha256: string;
  size: number;
  ftype: string;
}

/** An image as LXD sees it on a SimpleStreams server, and where its files are. */
export interface StreamImage {
  /** LXD-shaped, as `lxc image list images:` shows it. */
  image: Image;
  /** `meta` alone for a unified (`lxd_combined.tar.gz`) image; `meta` and `root` for a split one. */
  files: { meta: DownloadableFile; root?: DownloadableFile };
  product: string;
  /** The version (serial) key. */
  version: string;
}

/** An alias and the image (fingerprint) it resolves to for one type and architecture. */
export interface StreamAlias extends ImageAliasesEntry {
  /** LXD architecture name of the target. */
  architecture: string;
}

/** LXD's architecture names, with the other spellings image servers use. */
const ARCHITECTURES: Record<string, readonly string[]> = {
  i686: ['i386', 'i586', '386', 'x86'],
  x86_64: ['amd64', 'x64'],
  armv6l: ['armel'],
  armv7l: ['armhf', 'armhfp', 'armv7a', 'armv7hl', 'armv7hnl', 'arm'],
  armv8l: [],
  aarch64: ['arm64', 'arm64v8'],
  ppc: ['powerpc'],
  ppc64: ['powerpc64'],
  ppc64le: ['ppc64el'],
  s390x: [],
  mips: ['mipsel', 'mipsle'],
  mips64: ['mips64el', 'mips64le'],
  riscv32: [],
  riscv64: [],
  loongarch64: ['loong64'],
};

/** Architectures a host of the first can also run (LXD's "personalities"). */
const PERSONALITIES: Record<string, readonly string[]> = {
  x86_64: ['i686'],
  aarch64: ['armv7l', 'armv8l'],
  ppc64: ['ppc'],
  s390x: [],
};

/** LXD's name for an architecture (`amd64` → `x86_64`), or undefined if LXD does not know it. */
export function lxdArchitecture(name: string): string | undefined {
  if (name in ARCHITECTURES) return name;
  for (const [lxd, aliases] of Object.entries(ARCHITECTURES)) if (aliases.includes(name)) return lxd;
  return undefined;
}

/** The LXD architecture name of the machine running this process. */
export function localArchitecture(): string {
  const map: Record<string, string> = {
    x64: 'x86_64',
    arm64: 'aarch64',
    arm: 'armv7l',
    ia32: 'i686',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loongarch64',
  };
  return map[process.arch] ?? process.arch;
}

const ROOT_TYPES = ['squashfs', 'root.tar.xz', 'disk-kvm.img', 'uefi1.img', 'disk1.img'] as const;
const VM_TYPES = new Set(['disk-kvm.img', 'disk1.img', 'uefi1.img']);

function fingerprintFor(meta: ProductItem, root: ProductItem | undefined): string | undefined {
  if (!root) return meta.sha256;
  switch (root.ftype) {
    case 'root.tar.xz':
      return meta.combined_rootxz_sha256 || meta.combined_sha256;
    case 'squashfs':
      return meta.combined_squashfs_sha256;
    case 'disk-kvm.img':
      return meta['combined_disk-kvm-img_sha256'];
    case 'disk1.img':
      return meta['combined_disk1-img_sha256'];
    case 'uefi1.img':
      return meta['combined_uefi1-img_sha256'];
    default:
      return undefined;
  }
}

/** `20240101...` → `2024-01-01T00:00:00Z`; undefined when the serial does not start with a date. */
function serialDate(serial: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})/.exec(serial);
  if (!m) return undefined;
  const iso = `${m[1]}-${m[2]}-${m[3]}T00:00:00Z`;
  const t = Date.parse(iso);
  // Date.parse accepts 2024-02-31; a round trip rejects it.
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== iso.slice(0, 10)) return undefined;
  return iso;
}

function download(item: ProductItem): DownloadableFile {
  return { path: item.path, sha256: item.sha256 ?? '', size: item.size ?? 0, ftype: item.ftype };
}

/**
 * Every LXD image a products file describes, one per (version, metadata item, rootfs item), as
 * LXD's own simplestreams code lists them. Products of unknown architectures and versions whose
 * key does not start with a date are skipped, like LXD does.
 */
export function productsToImages(products: Products, source?: { server: string }): StreamImage[] {
  const out: StreamImage[] = [];
  for (const [productId, product] of Object.entries(products.products ?? {})) {
    const architecture = lxdArchitecture(product.arch);
    if (!architecture) continue;
    for (const [serial, version] of Object.entries(product.versions ?? {})) {
      const created = serialDate(serial);
      if (!created) continue;
      const items = Object.values(version.items ?? {});
      const add = (meta: ProductItem, root: ProductItem | undefined) => {
        const fingerprint = fingerprintFor(meta, root);
        if (!fingerprint || !meta.path) return;
        let description = `${product.os} ${product.release_title ?? ''} ${product.arch}`;
        if (version.label) description += ` (${version.label})`;
        description += ` (${serial})`;
        const properties: Record<string, string> = {
          os: product.os,
          release: product.release,
          version: product.version ?? '',
          architecture: product.arch,
          label: version.label ?? '',
          serial,
          description,
          type: root ? root.ftype : 'tar.gz',
          variant: product.variant ?? '',
        };
        for (const [k, v] of Object.entries(product.lxd_requirements ?? {})) properties[`requirements.${k}`] = v;
        for (const k of Object.keys(properties)) if (properties[k] === '') delete properties[k];
        const aliases: ImageAlias[] = product.aliases
          ? product.aliases.split(',').map((name) => ({ name: name.trim(), description: '' }))
          : [];
        const eol = product.support_eol ? Date.parse(`${product.support_eol}T00:00:00Z`) : Number.NaN;
        const image: Image = {
          aliases,
          architecture,
          auto_update: false,
          cached: false,
          created_at: created,
          expires_at: Number.isNaN(eol) ? '1970-01-01T00:00:00Z' : new Date(eol).toISOString(),
          filename: meta.path.slice(meta.path.lastIndexOf('/') + 1),
          fingerprint,
          last_used_at: '0001-01-01T00:00:00Z',
          profiles: [],
          properties,
          public: true,
          size: (meta.size ?? 0) + (root?.size ?? 0),
          type: root && VM_TYPES.has(root.ftype) ? 'virtual-machine' : 'container',
          update_source: source ? { server: source.server, protocol: 'simplestreams' } : {},
          uploaded_at: created,
        };
        const files: StreamImage['files'] = { meta: download(meta) };
        if (root) files.root = download(root);
        out.push({ image, files, product: productId, version: serial });
      };
      for (const item of items) {
        if (item.ftype === 'lxd_combined.tar.gz') add(item, undefined);
        else if (item.ftype === 'lxd.tar.xz') {
          for (const root of items) if ((ROOT_TYPES as readonly string[]).includes(root.ftype)) add(item, root);
        }
      }
    }
  }
  return out;
}

const typeScore = (type: string | undefined): number => {
  const i = (ROOT_TYPES as readonly string[]).indexOf(type ?? '');
  return Math.max(i, 0);
};

/**
 * LXD's order: grouped by os, release, variant, then newest serial first, then architecture, then
 * preferred rootfs type (squashfs first). Aliases go to the first image that claims them, so this
 * order is what makes an alias point at the newest version.
 */
export function compareImages(a: Image, b: Image): number {
  for (const prop of ['os', 'release', 'variant', 'serial', 'architecture']) {
    const x = a.properties[prop] ?? '';
    const y = b.properties[prop] ?? '';
    if (x === y) continue;
    if (x === '') return 1;
    if (y === '') return -1;
    if (prop === 'serial') return x > y ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return typeScore(a.properties.type) - typeScore(b.properties.type);
}

/**
 * Expands each product's aliases as LXD does: `name` (only for images of the local architecture)
 * and `name/<product arch>`. Returns the images with their resolved aliases and the alias table,
 * native architecture first.
 */
export function applyAliases(
  images: readonly StreamImage[],
  nativeArchitecture: string = localArchitecture(),
): { images: StreamImage[]; aliases: StreamAlias[] } {
  const sorted = [...images].sort((a, b) => compareImages(a.image, b.image));
  const table: StreamAlias[] = [];
  const claim = (name: string, image: Image): boolean => {
    if (table.some((e) => e.name === name && e.type === image.type && e.architecture === image.architecture)) {
      return false;
    }
    table.push({
      name,
      target: image.fingerprint,
      type: image.type,
      architecture: image.architecture,
      description: '',
    });
    return true;
  };
  const out = sorted.map((entry) => {
    const aliases: ImageAlias[] = [];
    for (const { name } of entry.image.aliases) {
      if (claim(name, entry.image) && entry.image.architecture === nativeArchitecture) {
        aliases.push({ name, description: '' });
      }
      const long = `${name}/${entry.image.properties.architecture ?? entry.image.architecture}`;
      if (claim(long, entry.image)) aliases.push({ name: long, description: '' });
    }
    return { ...entry, image: { ...entry.image, aliases } };
  });
  const rank = (arch: string) =>
    arch === nativeArchitecture ? 0 : (PERSONALITIES[nativeArchitecture] ?? []).includes(arch) ? 1 : 2;
  // Stable: within one rank, the newest-first order above is kept.
  table.sort((a, b) => rank(a.architecture) - rank(b.architecture));
  return { images: out, aliases: table };
}

/** The newest version key of a product (serials sort as strings: `20240102_00:00` > `20240101_12:00`). */
export function newestVersion(product: Product): string | undefined {
  let best: string | undefined;
  for (const key of Object.keys(product.versions ?? {})) if (best === undefined || key > best) best = key;
  return best;
}
