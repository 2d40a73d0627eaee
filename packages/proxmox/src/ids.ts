import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from './errors.js';
import type { GuestType } from './guest-config.js';
import { MAX_VMID, MIN_VMID } from './helpers.js';

/**
 * Local checks of every identifier the client puts in a path or a parameter, with PVE's own rules
 * (PVE::JSONSchema's formats, as pve-apidoc.json names them). A refusal is an InvalidArgumentError
 * naming the argument, raised before anything is sent. PVE would refuse the same values; checking
 * here keeps them out of URLs (a `/` or `..` in a node name would change the path) and out of logs.
 */

function refuse(argument: string, rule: string, value: unknown): never {
  throw new InvalidArgumentError({
    message: `Invalid ${argument} ${describe(value)}: ${rule}`,
    argument,
    backend: BACKEND,
  });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined)
    return String(value);
  return `(${typeof value})`;
}

function matching(value: unknown, re: RegExp, argument: string, rule: string, maxLength?: number): string {
  if (typeof value !== 'string' || !re.test(value) || (maxLength !== undefined && value.length > maxLength)) {
    refuse(argument, rule, value);
  }
  return value;
}

// pve-node: a host name label.
const NODE_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
/** A node name (pve-node): letters, digits and inner hyphens. */
export function checkNode(value: unknown, argument = 'node'): string {
  return matching(value, NODE_RE, argument, 'a node name is letters, digits and inner hyphens');
}

/** A VMID (pve-vmid): an integer from 100 to 999999999, as a number or decimal digits. */
export function checkVmid(value: unknown, argument = 'vmid'): number {
  const n =
    typeof value === 'number' ? value : typeof value === 'string' && /^[1-9]\d*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < MIN_VMID || n > MAX_VMID) {
    refuse(argument, `a VMID is an integer from ${MIN_VMID} to ${MAX_VMID}`, value);
  }
  return n;
}

/** A guest's VMID: also `qemu/100` for a VM (`lxc/100` for a container), as /cluster/resources names them. */
export function checkGuestVmid(value: unknown, type: GuestType, argument = 'vmid'): number {
  if (typeof value === 'string') {
    const m = /^(qemu|lxc)\/(.*)$/.exec(value);
    if (m) {
      if (m[1] !== type) refuse(argument, `a ${m[1]} resource id is not a ${type} guest`, value);
      return checkVmid(m[2], argument);
    }
  }
  return checkVmid(value, argument);
}

/** An optional VMID: undefined passes. */
export function optionalVmid(value: unknown, argument = 'vmid'): number | undefined {
  return value === undefined ? undefined : checkVmid(value, argument);
}

// pve-storage-id
const STORAGE_RE = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
/** A storage id (pve-storage-id), e.g. `local-lvm`. */
export function checkStorage(value: unknown, argument = 'storage'): string {
  return matching(value, STORAGE_RE, argument, 'a storage id starts with a letter, then letters, digits, - _ .');
}

export function optionalStorage(value: unknown, argument = 'storage'): string | undefined {
  return value === undefined ? undefined : checkStorage(value, argument);
}

/** `storage-pair-list`: one storage id, or `src:dst,src2:dst2` (`1` maps a storage to itself). */
export function checkStoragePairs(value: unknown, argument = 'targetStorage'): string | undefined {
  if (value === undefined) return undefined;
  const text = matching(value, /^[^\s]+$/, argument, 'one storage id or src:dst pairs separated by commas');
  for (const pair of text.split(',')) {
    const ids = pair.split(':');
    if (ids.length > 2) refuse(argument, 'one storage id or src:dst pairs separated by commas', value);
    for (const id of ids) if (id !== '1') checkStorage(id, argument);
  }
  return text;
}

// pve-configid, as snapshot names (pve-snapshot-name) and config keys use it.
const CONFIG_ID_RE = /^[a-z][a-z0-9_-]+$/i;
/** A snapshot name: a letter, then letters, digits, `-` and `_`, at most 40 characters. */
export function checkSnapshotName(value: unknown, argument = 'snapname'): string {
  return matching(
    value,
    CONFIG_ID_RE,
    argument,
    'a snapshot name is a letter, then letters, digits, - and _ (2 to 40 characters)',
    40,
  );
}

export function optionalSnapshotName(value: unknown, argument = 'snapname'): string | undefined {
  return value === undefined ? undefined : checkSnapshotName(value, argument);
}

/** Config keys to delete (pve-configid-list), joined as PVE expects. */
export function configKeyList(keys: unknown, argument = 'delete'): string | undefined {
  if (keys === undefined) return undefined;
  if (!Array.isArray(keys)) refuse(argument, 'a list of config keys', keys);
  for (const key of keys) matching(key, CONFIG_ID_RE, argument, 'a config key is a letter, then letters, digits, - _');
  return keys.length > 0 ? keys.join(',') : undefined;
}

// pve-poolid: names, nested up to three levels with `/` (PVE 8.1+).
const POOL_RE = /^[A-Za-z0-9.\-_]+(\/[A-Za-z0-9.\-_]+){0,2}$/;
export function optionalPool(value: unknown, argument = 'pool'): string | undefined {
  if (value === undefined) return undefined;
  return matching(value, POOL_RE, argument, 'a pool id is letters, digits, . - _ (nested pools with /)');
}

// pve-realm and pve-userid (the apidoc's own pattern for /access/permissions).
const REALM = '[A-Za-z][A-Za-z0-9.\\-_]+';
const TOKEN_NAME = '[A-Za-z][A-Za-z0-9.\\-_]+';
const USERID_RE = new RegExp(`^[^\\s:/]+@${REALM}$`);
const TOKENID_RE = new RegExp(`^[^\\s:/]+@${REALM}!${TOKEN_NAME}$`);

/** A realm (pve-realm): `pam`, `pve`, or a configured domain. */
export function checkRealm(value: unknown, argument = 'realm'): string {
  return matching(value, new RegExp(`^${REALM}$`), argument, 'a realm is a letter, then letters, digits, . - _', 32);
}

/** A user id (pve-userid): `user@realm`, at most 64 characters. */
export function checkUserid(value: unknown, argument = 'username'): string {
  return matching(value, USERID_RE, argument, 'a user id looks like user@realm', 64);
}

/** An API token id: `user@realm!tokenname`. */
export function checkTokenId(value: unknown, argument = 'tokenId'): string {
  return matching(value, TOKENID_RE, argument, 'a token id looks like user@realm!tokenname');
}

// A volume id (`storage:volume`), as PVE::Storage::parse_volume_id reads it; or an absolute path.
const VOLUME_RE = /^[a-z][a-z0-9\-_.]*[a-z0-9]:[^\s\0]+$/i;
export function checkVolumeId(value: unknown, argument = 'volume', allowPath = false): string {
  if (allowPath && typeof value === 'string' && /^\/[^\0\r\n]+$/.test(value)) return value;
  return matching(value, VOLUME_RE, argument, 'a volume id looks like storage:path, e.g. local:iso/debian.iso', 255);
}

// Disk keys of `resize` (the enum of each guest type's schema).
const QEMU_DISK_RE = /^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|efidisk0|tpmstate0)$/;
const LXC_DISK_RE = /^(rootfs|mp([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))$/;
export function checkDisk(value: unknown, type: GuestType, argument = 'disk'): string {
  return type === 'qemu'
    ? matching(
        value,
        QEMU_DISK_RE,
        argument,
        'a VM disk is ide0-3, sata0-5, scsi0-30, virtio0-15, efidisk0 or tpmstate0',
      )
    : matching(value, LXC_DISK_RE, argument, 'a container disk is rootfs or mp0-255');
}

/** An integer in a range. */
export function checkInteger(value: unknown, argument: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    refuse(argument, `an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`, value);
  }
  return value;
}

/** An integer in a range; undefined passes. */
export function optionalInteger(
  value: unknown,
  argument: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  return value === undefined ? undefined : checkInteger(value, argument, min, max);
}

/** One of a fixed set of words; undefined passes. */
export function optionalEnum<T extends string>(value: unknown, allowed: readonly T[], argument: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    refuse(argument, `one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}

export function checkEnum<T extends string>(value: unknown, allowed: readonly T[], argument: string): T {
  const out = optionalEnum(value, allowed, argument);
  if (out === undefined) refuse(argument, `one of ${allowed.join(', ')}`, value);
  return out;
}

/**
 * A file name for the storage upload (and download-url): at most 255 characters (the schema's
 * maxLength), no directory part, and no control characters, which would end the multipart header
 * line or be silently rewritten by PVE (it replaces anything but letters, digits, `_ . -` by `_`).
 */
export function checkStorageFilename(value: unknown, argument = 'filename'): string {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..') {
    refuse(argument, 'a file name is a non-empty string', value);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x1f\x7f]/.test(value))
    refuse(argument, 'a file name has no control characters (CR, LF, NUL, ...)', value);
  if (/[/\\]/.test(value)) refuse(argument, 'a file name has no directory part (/ or \\)', value);
  if (value.length > 255) refuse(argument, 'a file name has at most 255 characters', value);
  return value;
}

/** A non-empty string without NUL (paths inside a guest, user names, ...). */
export function checkText(value: unknown, argument: string, maxLength?: number): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    refuse(argument, 'a non-empty string without NUL', value);
  }
  if (maxLength !== undefined && value.length > maxLength) refuse(argument, `at most ${maxLength} characters`, value);
  return value;
}

/** A delay in ms: a finite number from 0 up; undefined passes. */
export function optionalMs(value: unknown, argument: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    refuse(argument, 'a number of milliseconds from 0 up', value);
  }
  return value;
}

/** A Linux bridge name (pve-bridge-id), as net[n]'s `bridge=` takes it. */
export function checkBridge(value: unknown, argument = 'bridge'): string {
  return matching(value, /^[-_.\w]+$/, argument, 'a bridge name is letters, digits, - _ .', 15);
}

/** An IP network in CIDR form, e.g. `10.1.2.0/24`. */
export function checkCidr(value: unknown, argument = 'migrationNetwork'): string {
  return matching(value, /^[0-9a-fA-F:.]+\/\d{1,3}$/, argument, 'a network in CIDR form, e.g. 10.1.2.0/24');
}

export function optionalNode(value: unknown, argument = 'node'): string | undefined {
  return value === undefined ? undefined : checkNode(value, argument);
}
