import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** One entry of a tarball built in memory. */
export interface TarEntry {
  name: string;
  type?: 'file' | 'dir';
  data?: Buffer | string;
  mode?: number;
}

function header(entry: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const name = entry.type === 'dir' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, '0')}\0`;
  h.write(name, 0, 100);
  h.write(octal(entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644), 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  h.write('        ', 148);
  h.write(entry.type === 'dir' ? '5' : '0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** A ustar tarball of the entries, gzipped unless `gzip: false`. */
export function tarball(entries: readonly TarEntry[], opts: { gzip?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'dir' ? Buffer.alloc(0) : Buffer.from(e.data ?? '');
    blocks.push(header(e, data.length), data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(blocks);
  return opts.gzip === false ? tar : gzipSync(tar);
}

/** metadata.yaml of a test image; `marker` makes its bytes (and so the fingerprint) unique. */
export function metadataYaml(marker: string): string {
  return [
    'architecture: x86_64',
    `creation_date: ${Math.floor(Date.now() / 1000)}`,
    'properties:',
    '  os: busybox',
    '  release: "1.35"',
    `  description: vmplane test image ${marker}`,
    'templates: {}',
    '',
  ].join('\n');
}

/** A unique marker for test image bytes. */
export function marker(): string {
  return randomBytes(8).toString('hex');
}

/** A tiny unified image (metadata.yaml + a rootfs with one file): unique bytes, not meant to boot. */
export function unifiedImage(mark = marker(), padding = 0): Buffer {
  return tarball([
    // Random bytes do not compress: `padding` sets the tarball's size.
    ...(padding > 0 ? [{ name: 'rootfs/padding', data: randomBytes(padding) }] : []),
    { name: 'metadata.yaml', data: metadataYaml(mark) },
    { name: 'rootfs', type: 'dir' },
    { name: 'rootfs/etc', type: 'dir' },
    { name: 'rootfs/etc/vmplane-marker', data: `${mark}\n` },
  ]);
}

/** A split image's metadata tarball (metadata.yaml only), unique by marker. */
export function splitMetadata(mark = marker()): Buffer {
  return tarball([
    { name: 'metadata.yaml', data: metadataYaml(mark) },
    { name: 'templates', type: 'dir' },
  ]);
}
