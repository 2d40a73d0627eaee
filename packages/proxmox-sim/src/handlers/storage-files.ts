import { PveError } from '../state.js';

/**
 * The file names PVE takes for `upload` and `download-url` (PVE::API2::Storage::Status, pve-storage
 * 9.1): the name is normalised first, then its extension must suit the content type.
 */

export type UploadContent = 'iso' | 'vztmpl' | 'import';

/** Where each content type lives under a directory storage's path. */
export const CONTENT_DIRS: Record<UploadContent, string> = {
  iso: 'template/iso',
  vztmpl: 'template/cache',
  import: 'import',
};

/**
 * PVE's normalize_content_filename: drop a final newline and any directory part, then every
 * character outside `[A-Za-z0-9_.-]` becomes `_`. `unit: 'byte'` replaces per UTF-8 byte, as the
 * upload does (pveproxy hands the multipart header's name over undecoded, so `é` becomes `__`);
 * `'char'` per character, as for form parameters, which PVE decodes from UTF-8 first.
 */
export function normalizeContentFilename(name: string, unit: 'byte' | 'char'): string {
  const base = name.replace(/\n$/, '').replace(/^.*[/\\]/, '');
  const units = unit === 'byte' ? Buffer.from(base, 'utf8').toString('latin1') : base;
  return units.replace(/[^A-Za-z0-9_.-]/g, '_');
}

// ISO_EXT_RE_0, VZTMPL_EXT_RE_1 (a plain `.tar` since pve-storage 9.1) and UPLOAD_IMPORT_EXT_RE_1
// (no `.ovf`: it only describes disks that would have to come with it), anchored as the handler
// anchors them. The import one is case-sensitive, as PVE's is.
const ISO = /[^/]+\.(?:iso|img)$/i;
const VZTMPL = /[^/]+\.(?:(tar)|tar\.(gz|xz|zst|bz2))$/i;
const IMPORT = /[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$/;

const paramError = (errors: Record<string, string>) => new PveError(400, 'Parameter verification failed.', errors);

/** The volume format PVE lists for an accepted name; throws PVE's 400 for a wrong extension. */
export function contentFileFormat(content: string, filename: string): string {
  if (content === 'iso') {
    if (!ISO.test(filename)) throw paramError({ filename: 'wrong file extension' });
    return 'iso';
  }
  if (content === 'vztmpl') {
    const m = VZTMPL.exec(filename);
    if (!m) throw paramError({ filename: 'wrong file extension' });
    const ext = (m[1] ?? m[2]) as string;
    return ext === 'tar' ? ext : `t${ext}`;
  }
  if (content === 'import') {
    const m = IMPORT.exec(filename);
    if (!m) throw paramError({ filename: 'invalid filename or wrong extension' });
    return m[1] as string;
  }
  // The schema's enumeration refuses other content types before this; kept for other schemas.
  throw paramError({ content: `upload content type '${content}' not allowed` });
}
