import { InvalidArgumentError } from '@vmplane/common';
import type { ChecksumAlgorithm, ChecksumFormat } from './checksums.js';
import { UnknownImageError } from './errors.js';

/**
 * The cloud images vmplane installs Proxmox VMs from: the distributions' own generic cloud images
 * (qcow2, cloud-init inside), named as go-pve-qemu names them (`debian` + `12`) or as one word
 * (`debian-12`). Each comes with the checksum file its publisher signs beside it.
 */

export type OsName = 'debian' | 'ubuntu' | 'rocky';
/** How the OS installs packages: what the init step runs. */
export type PackageManager = 'apt' | 'dnf';

export interface CatalogueImage {
  /** `debian-12`, `ubuntu-24.04`, `rocky-9`. */
  name: string;
  os: OsName;
  version: string;
  /** Where the image is downloaded from (the mirror's, when one is configured). */
  url: string;
  /** The checksum file listing `file`. */
  checksumUrl: string;
  checksumFormat: ChecksumFormat;
  checksumAlgorithm: ChecksumAlgorithm;
  /** The file's name upstream, as its checksum file lists it. */
  file: string;
  /**
   * The name it gets on a PVE storage as `import` content, which takes only `.qcow2`, `.raw`,
   * `.vmdk` and `.ova`: Ubuntu's `.img` (a qcow2 file) is stored as `.qcow2`.
   */
  storageFile: string;
  /** The account cloud-init makes by default on this image. */
  defaultUser: string;
  packageManager: PackageManager;
}

export interface CatalogueOptions {
  /**
   * A base URL per OS replacing the official one, for mirrors (and tests). The path below it is
   * the official layout: `<base>/<codename>/latest/<file>` for Debian, `<base>/<version>/release/<file>`
   * for Ubuntu, `<base>/<version>/images/x86_64/<file>` for Rocky.
   */
  mirrors?: Partial<Record<OsName, string>>;
}

const OFFICIAL: Record<OsName, string> = {
  debian: 'https://cloud.debian.org/images/cloud',
  ubuntu: 'https://cloud-images.ubuntu.com/releases',
  rocky: 'https://dl.rockylinux.org/pub/rocky',
};

const DEBIAN_CODENAMES: Record<string, string> = { '11': 'bullseye', '12': 'bookworm', '13': 'trixie' };
const UBUNTU_VERSIONS = ['20.04', '22.04', '24.04'] as const;
const ROCKY_VERSIONS = ['8', '9', '10'] as const;

// go-pve-qemu calls Rocky Linux `rockylinux`; people also write `rocky`.
const OS_ALIASES: Record<string, OsName> = { debian: 'debian', ubuntu: 'ubuntu', rocky: 'rocky', rockylinux: 'rocky' };

function checkBase(os: OsName, base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new InvalidArgumentError({ message: `mirrors.${os} must be an http(s) URL`, argument: `mirrors.${os}` });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError({ message: `mirrors.${os} must be an http(s) URL`, argument: `mirrors.${os}` });
  }
  // PVE puts the URL into a task command line: nothing that needs quoting there.
  if (/[\s'"\\]/.test(base) || url.search || url.hash) {
    throw new InvalidArgumentError({
      message: `mirrors.${os} must be a plain base URL without spaces, quotes, query or fragment`,
      argument: `mirrors.${os}`,
    });
  }
  return base.replace(/\/+$/, '');
}

/** The catalogue: every supported image, with mirrors applied. */
export class ImageCatalogue {
  readonly #images: ReadonlyMap<string, CatalogueImage>;

  constructor(opts: CatalogueOptions = {}) {
    const base = { ...OFFICIAL };
    for (const [os, url] of Object.entries(opts.mirrors ?? {})) {
      if (!(os in OFFICIAL)) {
        throw new InvalidArgumentError({ message: `mirrors: unknown OS ${JSON.stringify(os)}`, argument: 'mirrors' });
      }
      if (url !== undefined) base[os as OsName] = checkBase(os as OsName, url);
    }
    const images: CatalogueImage[] = [];
    for (const [version, codename] of Object.entries(DEBIAN_CODENAMES)) {
      const dir = `${base.debian}/${codename}/latest`;
      const file = `debian-${version}-genericcloud-amd64.qcow2`;
      images.push({
        name: `debian-${version}`,
        os: 'debian',
        version,
        url: `${dir}/${file}`,
        checksumUrl: `${dir}/SHA512SUMS`,
        checksumFormat: 'gnu',
        checksumAlgorithm: 'sha512',
        file,
        storageFile: file,
        defaultUser: 'debian',
        packageManager: 'apt',
      });
    }
    for (const version of UBUNTU_VERSIONS) {
      const dir = `${base.ubuntu}/${version}/release`;
      const file = `ubuntu-${version}-server-cloudimg-amd64.img`;
      images.push({
        name: `ubuntu-${version}`,
        os: 'ubuntu',
        version,
        url: `${dir}/${file}`,
        checksumUrl: `${dir}/SHA256SUMS`,
        checksumFormat: 'gnu',
        checksumAlgorithm: 'sha256',
        file,
        storageFile: file.replace(/\.img$/, '.qcow2'),
        defaultUser: 'ubuntu',
        packageManager: 'apt',
      });
    }
    for (const version of ROCKY_VERSIONS) {
      const dir = `${base.rocky}/${version}/images/x86_64`;
      const file = `Rocky-${version}-GenericCloud-Base.latest.x86_64.qcow2`;
      images.push({
        name: `rocky-${version}`,
        os: 'rocky',
        version,
        url: `${dir}/${file}`,
        checksumUrl: `${dir}/CHECKSUM`,
        checksumFormat: 'bsd',
        checksumAlgorithm: 'sha256',
        file,
        storageFile: file,
        defaultUser: 'rocky',
        packageManager: 'dnf',
      });
    }
    this.#images = new Map(images.map((i) => [i.name, Object.freeze(i)]));
  }

  /** Every image, in catalogue order. */
  list(): CatalogueImage[] {
    return [...this.#images.values()];
  }

  /**
   * One image by name: `debian-12`, `debian/12`, `debian:12`, `ubuntu-24.04`, `rockylinux-9`.
   * Throws UnknownImageError for anything else.
   */
  get(image: string): CatalogueImage {
    const m = typeof image === 'string' ? /^([a-z]+)[-/:]([0-9][0-9.]*)$/i.exec(image.trim()) : null;
    const os = m?.[1] ? OS_ALIASES[m[1].toLowerCase()] : undefined;
    const found = os && m?.[2] ? this.#images.get(`${os}-${m[2]}`) : undefined;
    if (!found) throw new UnknownImageError({ image: String(image), known: [...this.#images.keys()] });
    return found;
  }

  /** go-pve-qemu's pair: `('debian', '12')`, `('rockylinux', '9')`. */
  find(os: string, version: string): CatalogueImage {
    return this.get(`${os}-${version}`);
  }

  /** Whether `image` names a catalogue image (rather than a PVE volume or template). */
  has(image: string): boolean {
    try {
      this.get(image);
      return true;
    } catch {
      return false;
    }
  }
}
