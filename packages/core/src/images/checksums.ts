/**
 * The checksum files the distributions publish beside their cloud images, in their three shapes:
 *
 *   SHA512SUMS (Debian)   `<hex>  debian-12-genericcloud-amd64.qcow2`
 *   SHA256SUMS (Ubuntu)   `<hex> *ubuntu-24.04-server-cloudimg-amd64.img` (`*` marks binary mode)
 *   CHECKSUM (Rocky)      `SHA256 (Rocky-9-GenericCloud-Base.latest.x86_64.qcow2) = <hex>`, BSD style,
 *                         between `# <file>: <n> bytes` comments
 */

export type ChecksumAlgorithm = 'sha256' | 'sha512';
export type ChecksumFormat = 'gnu' | 'bsd';

export interface ChecksumEntry {
  algorithm: ChecksumAlgorithm;
  /** Lower-case hex digits. */
  hex: string;
}

const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha256: 64, sha512: 128 };

/**
 * Every entry of a checksum file, by file name. Lines that match neither shape (comments, PGP
 * armour of a signed file, blank lines) are skipped; a digest of the wrong length for its
 * algorithm is skipped too, so a truncated file never yields a checksum PVE would refuse later.
 * `algorithm` is what a GNU-style file holds (its lines do not say); a BSD line names its own.
 */
export function parseChecksums(
  text: string,
  format: ChecksumFormat,
  algorithm: ChecksumAlgorithm,
): Map<string, ChecksumEntry> {
  const out = new Map<string, ChecksumEntry>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (format === 'bsd') {
      const m = /^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$/.exec(line);
      if (!m?.[1] || !m[2] || !m[3]) continue;
      const algo = m[1].toLowerCase() as ChecksumAlgorithm;
      if (m[3].length !== HEX_LENGTH[algo]) continue;
      out.set(m[2], { algorithm: algo, hex: m[3].toLowerCase() });
    } else {
      // GNU coreutils: the digest, one space, then a space (text) or `*` (binary), then the name.
      const m = /^([0-9a-fA-F]+) [ *](.+)$/.exec(line);
      if (!m?.[1] || !m[2]) continue;
      if (m[1].length !== HEX_LENGTH[algorithm]) continue;
      // Some mirrors write `./name`.
      out.set(m[2].replace(/^\.\//, ''), { algorithm, hex: m[1].toLowerCase() });
    }
  }
  return out;
}
