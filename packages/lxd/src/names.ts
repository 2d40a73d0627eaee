import { InvalidArgumentError } from '@vmplane/common';

/**
 * What LXD 5.0.2 accepts and round-trips, for every kind of name the client sends. Each rule was
 * checked against the daemon: a name it lets through can be created, read back under the same
 * name, listed and deleted; what it refuses is either refused by LXD too, or accepted by LXD and
 * then unreachable (a '%' in a snapshot name is decoded twice), truncated (a NUL), or made
 * undeletable ('.' and '..' as aliases). Control characters are refused everywhere, also where
 * LXD takes them, since they break logs and terminals that print the name.
 */
export type NameKind =
  | 'instance'
  | 'snapshot'
  | 'backup'
  | 'image alias'
  | 'profile'
  | 'project'
  | 'network'
  | 'storage pool'
  | 'storage volume'
  | 'volume snapshot'
  | 'cluster member'
  | 'certificate name'
  | 'log file';

/** How LXD 5.0.2 writes names into the URLs of a recursion=0 list. */
export type UrlNameEncoding = 'raw' | 'escaped' | 'double-escaped';

interface NameRule {
  /** How the name is called in messages. */
  noun: string;
  /** Whether the name travels as a URL segment (then '/', '.', '..' cannot be sent). */
  segment: boolean;
  /** Characters refused, each with the reason. */
  refused?: ReadonlyArray<readonly [RegExp, string]>;
  /** Limit in UTF-8 bytes (a directory or file of that name exists on the host). */
  maxBytes?: number;
  /** A test of the whole name, when characters alone do not say it. */
  pattern?: readonly [RegExp, string];
  reserved?: readonly string[];
  /** How list answers write the name into URLs (see namesFromUrls). */
  listed: UrlNameEncoding;
}

/** Go's unicode.IsSpace, which LXD applies to storage names. */
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const FILE_NAME_BYTES = 255;

const RULES: Readonly<Record<NameKind, NameRule>> = {
  instance: {
    noun: 'instance name',
    segment: true,
    pattern: [
      /^[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/,
      "use 1-63 letters, digits and '-', starting with a letter and not ending with '-'",
    ],
    listed: 'escaped',
  },
  snapshot: {
    noun: 'snapshot name',
    segment: true,
    refused: [
      [/%/, "LXD 5.0.2 decodes '%' in snapshot URLs twice, so the snapshot could not be read or deleted"],
      [/[ ?&+]/, "LXD refuses ' ', '?', '&' and '+' in snapshot names"],
    ],
    maxBytes: FILE_NAME_BYTES,
    listed: 'raw',
  },
  backup: { noun: 'backup name', segment: true, maxBytes: FILE_NAME_BYTES, listed: 'raw' },
  'image alias': { noun: 'image alias', segment: false, listed: 'double-escaped' },
  profile: { noun: 'profile name', segment: true, listed: 'double-escaped' },
  project: {
    noun: 'project name',
    segment: true,
    refused: [[/[ _'"]/, "LXD refuses spaces, '_' and quotes in project names"]],
    reserved: ['*'],
    listed: 'double-escaped',
  },
  network: {
    noun: 'network name',
    segment: true,
    // Network names are interface names: LXD refuses any other character, and more than 15.
    pattern: [/^[A-Za-z0-9_.-]{1,15}$/, "use at most 15 ASCII letters, digits, '_', '.' and '-'"],
    listed: 'escaped',
  },
  'storage pool': {
    noun: 'storage pool name',
    segment: true,
    refused: [[GO_SPACE, 'LXD refuses white space in storage names']],
    maxBytes: FILE_NAME_BYTES,
    listed: 'raw',
  },
  'storage volume': {
    noun: 'storage volume name',
    segment: true,
    maxBytes: FILE_NAME_BYTES,
    listed: 'double-escaped',
  },
  'volume snapshot': {
    noun: 'volume snapshot name',
    segment: true,
    refused: [[GO_SPACE, 'LXD refuses white space in storage names']],
    maxBytes: FILE_NAME_BYTES,
    listed: 'raw',
  },
  // No cluster runs here, so this rule is the common one, not checked against a cluster.
  'cluster member': { noun: 'cluster member name', segment: true, listed: 'escaped' },
  'certificate name': { noun: 'certificate name', segment: false, listed: 'escaped' },
  'log file': { noun: 'log file name', segment: true, listed: 'escaped' },
};

/**
 * Checks a name of the given kind; returns it unchanged, or throws InvalidArgumentError naming
 * `argument` (by default the kind's noun) before anything is sent.
 */
export function checkName(kind: NameKind, value: unknown, argument?: string): string {
  const rule = RULES[kind];
  const reason = refusal(rule, value);
  if (reason !== undefined) {
    throw new InvalidArgumentError({
      message: `Invalid ${rule.noun} ${describe(value)}: ${reason}`,
      argument: argument ?? rule.noun,
      backend: 'lxd',
    });
  }
  return value as string;
}

function refusal(rule: NameRule, value: unknown): string | undefined {
  if (typeof value !== 'string') return 'it must be a string';
  if (value === '') return 'it must not be empty';
  if (hasLoneSurrogate(value)) return 'it is not well-formed Unicode';
  if (value.includes('\0')) return 'LXD cuts a name at a NUL, so another name would be used';
  if (hasControlCharacter(value)) return 'control characters are refused';
  if (value === '.' || value === '..') return `'${value}' cannot be reached through a URL`;
  if (rule.segment && value.includes('/')) return "it must not contain '/'";
  if (rule.pattern && !rule.pattern[0].test(value)) return rule.pattern[1];
  for (const [chars, why] of rule.refused ?? []) if (chars.test(value)) return why;
  if (rule.reserved?.includes(value)) return 'LXD reserves it';
  if (rule.maxBytes !== undefined && Buffer.byteLength(value, 'utf8') > rule.maxBytes) {
    return `it must be at most ${rule.maxBytes} bytes (LXD names a file after it)`;
  }
  return undefined;
}

export function checkInstanceName(name: unknown, argument = 'name'): string {
  return checkName('instance', name, argument);
}
export function checkSnapshotName(name: unknown, argument = 'snapshot'): string {
  return checkName('snapshot', name, argument);
}
export function checkBackupName(name: unknown, argument = 'backup'): string {
  return checkName('backup', name, argument);
}
export function checkImageAlias(name: unknown, argument = 'alias'): string {
  return checkName('image alias', name, argument);
}
export function checkProfileName(name: unknown, argument = 'profile'): string {
  return checkName('profile', name, argument);
}
export function checkProjectName(name: unknown, argument = 'project'): string {
  return checkName('project', name, argument);
}
export function checkNetworkName(name: unknown, argument = 'network'): string {
  return checkName('network', name, argument);
}
export function checkStoragePoolName(name: unknown, argument = 'pool'): string {
  return checkName('storage pool', name, argument);
}
export function checkVolumeName(name: unknown, argument = 'volume'): string {
  return checkName('storage volume', name, argument);
}
export function checkVolumeSnapshotName(name: unknown, argument = 'snapshot'): string {
  return checkName('volume snapshot', name, argument);
}
export function checkClusterMemberName(name: unknown, argument = 'member'): string {
  return checkName('cluster member', name, argument);
}
export function checkCertificateName(name: unknown, argument = 'name'): string {
  return checkName('certificate name', name, argument);
}
export function checkLogFileName(name: unknown, argument = 'file'): string {
  return checkName('log file', name, argument);
}

/** How the list of the given kind writes names into URLs, for namesFromUrls. */
export function listEncodingOf(kind: NameKind): UrlNameEncoding {
  return RULES[kind].listed;
}

/**
 * Turns the URLs of a recursion=0 list into names. LXD 5.0.2 writes them three ways: instance
 * snapshots, backups, pools and volume snapshots raw, aliases, profiles, projects and custom volumes
 * escaped twice, the rest once. Never throws: a '%' that does not start a valid escape is kept.
 */
export function namesFromUrls(urls: readonly string[], encoding: UrlNameEncoding = 'escaped'): string[] {
  return urls.map((url) => nameFromUrl(url, encoding));
}

export function nameFromUrl(url: string, encoding: UrlNameEncoding = 'escaped'): string {
  if (encoding === 'raw') {
    // A raw name may hold '?', so only the project parameter LXD appends is cut off.
    const segment = url.slice(url.lastIndexOf('/') + 1);
    return segment.replace(/\?project=[^?/]*$/, '');
  }
  const clean = url.split('?')[0] ?? url;
  const segment = clean.slice(clean.lastIndexOf('/') + 1);
  const once = decodeLeniently(segment);
  return encoding === 'double-escaped' ? decodeLeniently(once) : once;
}

/** Percent-decoding that leaves what is not a valid escape of UTF-8 as it is, instead of throwing. */
export function decodeLeniently(text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return decodeValidPrefixes(run);
    }
  });
}

/** A run of escapes that is not valid UTF-8 as a whole: decode what is, keep the rest. */
function decodeValidPrefixes(run: string): string {
  let out = '';
  let i = 0;
  while (i < run.length) {
    let decoded: string | undefined;
    // The longest UTF-8 sequence is four bytes: try the longest valid one starting here.
    for (let n = 4; n >= 1 && decoded === undefined; n--) {
      const piece = run.slice(i, i + 3 * n);
      if (piece.length !== 3 * n) continue;
      try {
        decoded = decodeURIComponent(piece);
        i += 3 * n;
      } catch {}
    }
    if (decoded === undefined) {
      out += run.slice(i, i + 3);
      i += 3;
    } else out += decoded;
  }
  return out;
}

/**
 * A path inside an instance, for the files API and SFTP: absolute, well-formed Unicode, no NUL,
 * and no '..' segment (which would escape where the caller meant).
 */
export function checkInstancePath(path: unknown, argument = 'path'): string {
  return checkPath(path, argument, false);
}

/** What SFTP's realpath takes: the same, except that '..' segments are allowed, since it resolves them. */
export function checkResolvablePath(path: unknown, argument = 'path'): string {
  return checkPath(path, argument, true);
}

/** A symlink's target: what the link will hold, relative or absolute, '..' allowed; no NUL. */
export function checkLinkTarget(target: unknown, argument = 'target'): string {
  let reason: string | undefined;
  if (typeof target !== 'string') reason = 'it must be a string';
  else if (target === '') reason = 'it must not be empty';
  else if (target.includes('\0')) reason = 'it must not contain NUL';
  else if (hasLoneSurrogate(target)) reason = 'it is not well-formed Unicode';
  if (reason !== undefined) {
    throw new InvalidArgumentError({
      message: `Invalid symlink target ${describe(target)}: ${reason}`,
      argument,
      backend: 'lxd',
    });
  }
  return target as string;
}

function checkPath(path: unknown, argument: string, dotDot: boolean): string {
  let reason: string | undefined;
  if (typeof path !== 'string') reason = 'it must be a string';
  else if (!path.startsWith('/')) reason = 'it must be absolute';
  else if (path.includes('\0')) reason = 'it must not contain NUL';
  else if (hasLoneSurrogate(path)) reason = 'it is not well-formed Unicode';
  else if (!dotDot && path.split('/').includes('..')) reason = "it must contain no '..' segment";
  if (reason !== undefined) {
    throw new InvalidArgumentError({
      message: `Invalid path ${describe(path)}: ${reason}`,
      argument,
      backend: 'lxd',
    });
  }
  return path as string;
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return true;
    } else if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/** The value as it appears in a message: quoted and escaped, cut when long, never an object's contents. */
function describe(value: unknown): string {
  if (typeof value === 'string') {
    const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
    return JSON.stringify(shown);
  }
  return value === null ? 'null' : typeof value;
}
