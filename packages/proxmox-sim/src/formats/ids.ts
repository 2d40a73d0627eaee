/**
 * Identifier formats (nodes, guests, storages, users, realms, groups, roles, pools, tags, SDN and
 * HA objects) and the other simple string formats of PVE, each as the verifier PVE registers for
 * it (PVE::JSONSchema in pve-common, and the access-control, storage, guest, HA and SDN modules).
 */
import { type FormatCheck, Problem, problem, type Show } from '../problem.js';
import { matching, when } from './common.js';

const reUser = /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$/;
const reTokenName = /[A-Za-z][A-Za-z0-9.\-_]+/;
const reEmailUser = /^[\w+\-~]+(\.[\w+\-~]+)*$/;
const reEmail = /^[\w+\-~]+(\.[\w+\-~]+)*@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$/;
const reVolumeId = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/is;

/** Drive names a QEMU guest can have (PVE::QemuServer::Drive::is_valid_drivename). */
export const reDriveName =
  /^(?:ide[0-3]|sata[0-5]|scsi(?:[0-9]|[12][0-9]|30)|virtio(?:[0-9]|1[0-5])|efidisk0|tpmstate0)$/;

/** Content types a storage can hold (PVE::Storage::Plugin). */
export const CONTENT_TYPES = ['images', 'rootdir', 'vztmpl', 'iso', 'backup', 'snippets', 'import', 'none'];

/** The privileges of PVE 9 (PVE::AccessControl). */
const PRIVILEGES = new Set([
  'Datastore.Allocate',
  'Datastore.AllocateSpace',
  'Datastore.AllocateTemplate',
  'Datastore.Audit',
  'Group.Allocate',
  'Mapping.Audit',
  'Mapping.Modify',
  'Mapping.Use',
  'Permissions.Modify',
  'Pool.Allocate',
  'Pool.Audit',
  'Realm.Allocate',
  'Realm.AllocateUser',
  'SDN.Allocate',
  'SDN.Audit',
  'SDN.Use',
  'Sys.AccessNetwork',
  'Sys.Audit',
  'Sys.Console',
  'Sys.Incoming',
  'Sys.Modify',
  'Sys.PowerMgmt',
  'Sys.Syslog',
  'User.Modify',
  'VM.Allocate',
  'VM.Audit',
  'VM.Backup',
  'VM.Clone',
  'VM.Config.CDROM',
  'VM.Config.CPU',
  'VM.Config.Cloudinit',
  'VM.Config.Disk',
  'VM.Config.HWType',
  'VM.Config.Memory',
  'VM.Config.Network',
  'VM.Config.Options',
  'VM.Console',
  'VM.GuestAgent.Audit',
  'VM.GuestAgent.FileRead',
  'VM.GuestAgent.FileSystemMgmt',
  'VM.GuestAgent.FileWrite',
  'VM.GuestAgent.Unrestricted',
  'VM.Migrate',
  'VM.PowerMgmt',
  'VM.Replicate',
  'VM.Snapshot',
  'VM.Snapshot.Rollback',
]);

const sdnId = (what: string, max: number | undefined, re: RegExp): FormatCheck => {
  return (v) => {
    if (!re.test(v)) return problem((show) => `${what} ID '${show(v)}' contains illegal characters`);
    if (max !== undefined && v.length > max)
      return problem((show) => `${what} ID '${show(v)}' can't be more length than ${max} characters`);
    return undefined;
  };
};

/** A volume ID or an absolute path, as disk and import-from keys take them. */
const volumeOrPath: FormatCheck = (v) =>
  v.startsWith('/') || reVolumeId.test(v) ? undefined : problem((show) => `unable to parse volume ID '${show(v)}'`);

/** A mount point path or volume: no `.`/`..` components that could climb out. */
const lxcPath = (v: string): boolean => !/\/\.\.?\//.test(v) && !/\/\.\.?$/.test(v) && !/^\.\.\//.test(v);

/** PVE::Storage::Plugin::verify_path: absolute, and no shell grouping characters right after the slash. */
const storagePath = (v: string): boolean => /^\/[^;()]+/.test(v);

/** `content-type=relative/path`, a storage's content directory override. */
function dirOverride(v: string): boolean {
  const m = /^([a-z]+)=([^.]*(?:\.?[^.]+)+)$/.exec(v);
  if (!m || !CONTENT_TYPES.includes(m[1] as string)) return false;
  const rel = m[2] as string;
  return rel.length < 1023 && rel.split('/').every((part) => part.length < 255);
}

/** Ranges of CPUs, `0-3,8,10-11`, as QEMU affinity and LXC cpusets take them. */
function cpuset(v: string): boolean {
  if (v === '') return false;
  return v.split(',').every((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return false;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    return a <= b && b < 8192;
  });
}

const HOTPLUG = new Set(['network', 'disk', 'cpu', 'memory', 'usb', 'cloudinit']);

function timezone(v: string): boolean {
  if (v === 'host') return true;
  if (!/^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/.test(v)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: v });
    return true;
  } catch {
    return false;
  }
}

/** A storage or bridge map (`source:target`, a default target, or `1` for identity), per PVE::JSONSchema::parse_idmap. */
const idPair =
  (idFormat: FormatCheck): FormatCheck =>
  (v) => {
    if (v === '1') return undefined;
    const m = /^([^:]+):([^:]+)$/.exec(v);
    for (const id of m ? [m[1] as string, m[2] as string] : [v]) {
      const p = idFormat(id);
      if (p)
        return new Problem(
          `entry '${v}' contains invalid ID - ${p.full}`,
          `entry '***' contains invalid ID - ${p.safe}`,
        );
    }
    return undefined;
  };

const PEM_BLOCK =
  '-----BEGIN ([A-Z0-9 ]+)-----\\r?\\n(?:[A-Za-z0-9+/=]+\\r?\\n|[A-Za-z-]+: .*\\r?\\n|\\r?\\n)*-----END \\1-----';
const rePemString = new RegExp(`^${PEM_BLOCK}\\r?\\n?$`);
const reCertificate = /^-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]+\r?\n)+-----END CERTIFICATE-----$/;

function certificateChain(v: string): boolean {
  const blocks = v.trim().split(/(?<=-----END CERTIFICATE-----)\s*/);
  return blocks.length > 0 && blocks.every((b) => reCertificate.test(b.trim()));
}

/** POST /nodes/{node}/execute: a JSON array of `{ path, method?, args? }`. */
function commandBatch(v: string): ((show: Show) => string) | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    return () => 'commands param did not contain valid JSON';
  }
  if (!Array.isArray(parsed)) return () => 'commands must be a JSON array';
  for (const c of parsed) {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) return () => 'each command must be an object';
    const { path, method, args } = c as Record<string, unknown>;
    if (typeof path !== 'string') return () => "a command lacks its 'path'";
    if (method !== undefined && !['GET', 'POST', 'PUT', 'DELETE'].includes(String(method)))
      return (show) => `invalid method '${show(String(method))}'`;
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args)))
      return () => "a command's 'args' must be an object";
  }
  return undefined;
}

export const ID_FORMATS: Record<string, FormatCheck> = {
  'pve-node': matching(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, () => 'value does not look like a valid node name'),
  'pve-vmid': matching(/^[1-9][0-9]{2,8}$/, () => 'value does not look like a valid VM ID'),
  'pve-storage-id': matching(
    /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i,
    (show, v) => `storage ID '${show(v)}' contains illegal characters`,
  ),
  'pve-configid': matching(/^[a-z][a-z0-9_-]+$/i, (show, v) => `invalid configuration ID '${show(v)}'`),
  'pve-realm': matching(
    /^[A-Za-z][A-Za-z0-9.\-_]+$/,
    (show, v) => `value '${show(v)}' does not look like a valid realm`,
  ),
  'pve-userid': (v) => {
    if (v.length > 64) return problem((show) => `user name '${show(v)}' is too long (${v.length} > 64)`);
    return reUser.test(v) ? undefined : problem((show) => `value '${show(v)}' does not look like a valid user name`);
  },
  'pve-tokenid': matching(
    new RegExp(`^[^\\s:/]+@[A-Za-z][A-Za-z0-9.\\-_]+!${reTokenName.source}$`),
    (show, v) => `value '${show(v)}' does not look like a valid token ID`,
  ),
  'pve-groupid': matching(/^[A-Za-z0-9.\-_]+$/, (show, v) => `group name '${show(v)}' contains invalid characters`),
  'pve-roleid': matching(/^[A-Za-z0-9.\-_]+$/, (show, v) => `role name '${show(v)}' contains invalid characters`),
  // Pools nest up to three levels: a/b/c.
  'pve-poolid': (v) => {
    if (v.split('/').length > 3) return problem((show) => `pool name '${show(v)}' nested too deeply (max levels = 3)`);
    return /^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+){0,2}$/.test(v)
      ? undefined
      : problem((show) => `invalid pool ID '${show(v)}'`);
  },
  'pve-tag': matching(/^[a-z0-9_][a-z0-9_\-+.]*$/i, () => 'invalid characters in tag'),
  'pve-replication-job-id': matching(
    /^[1-9][0-9]{2,8}-\d{1,9}$/,
    (show, v) => `invalid replication job id '${show(v)}'`,
  ),
  'pve-ha-resource-id': matching(/^[a-z]+:\S+$/, () => 'value does not look like a valid ha resource id'),
  'pve-ha-resource-or-vm-id': matching(/^(?:[a-z]+:\S+|\d+)$/, () => 'value does not look like a valid ha resource id'),
  'pve-ha-node': matching(
    /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(?::\d+)?$/,
    () => 'value does not look like a valid ha node name',
  ),
  'pve-sdn-zone-id': sdnId('zone', 8, /^[a-z][a-z0-9]*[a-z0-9]$/i),
  'pve-sdn-vnet-id': sdnId('vnet', 8, /^[a-z][a-z0-9]*[a-z0-9]$/i),
  'pve-sdn-controller-id': sdnId('controller', undefined, /^[a-z][a-z0-9_-]*[a-z0-9]$/i),
  'pve-sdn-dns-id': sdnId('dns', undefined, /^[a-z][a-z0-9_-]*[a-z0-9]$/i),
  'pve-sdn-ipam-id': sdnId('ipam', undefined, /^[a-z][a-z0-9_-]*[a-z0-9]$/i),
  'pve-sdn-fabric-id': sdnId('fabric', 8, /^[a-zA-Z0-9][a-zA-Z0-9-]{0,6}[a-zA-Z0-9]?$/),
  'pve-priv': when(
    (v) => PRIVILEGES.has(v),
    (show, v) => `invalid privilege '${show(v)}'`,
  ),
  'pve-task-status-type': matching(
    /^(ok|error|warning|unknown)$/,
    (show, v) => `invalid task status type '${show(v)}'`,
  ),
  'pve-day-of-week': matching(/^(mon|tue|wed|thu|fri|sat|sun)$/, (show, v) => `invalid day of week '${show(v)}'`),
  'pve-storage-content': when(
    (v) => CONTENT_TYPES.includes(v),
    (show, v) => `invalid content type '${show(v)}'`,
  ),
  email: matching(reEmail, () => 'value does not look like a valid email address'),
  'email-or-username': when(
    (v) => reEmail.test(v) || reEmailUser.test(v),
    () => 'value does not look like a valid email address or user name',
  ),
  'ldap-simple-attr': matching(
    /^[a-zA-Z0-9]+$/,
    (show, v) => `value '${show(v)}' does not look like a simple ldap attribute name`,
  ),
  urlencoded: matching(/^[-%a-zA-Z0-9_.!~*'()]*$/, (show, v) => `invalid urlencoded string: ${show(v)}`),
  'pve-volume-id': matching(reVolumeId, (show, v) => `unable to parse volume ID '${show(v)}'`),
  'pve-volume-id-or-absolute-path': volumeOrPath,
  'pve-volume-id-or-qm-path': (v) => (v === 'none' || v === 'cdrom' ? undefined : volumeOrPath(v)),
  'pve-lxc-mp-string': when(lxcPath, (show, v) => `${show(v)} contains illegal character sequences`),
  'pve-lxc-dev-string': when(
    (v) => v.startsWith('/dev/') && lxcPath(v) && !v.endsWith('/'),
    (show, v) => `${show(v)} is not a valid device path`,
  ),
  'pve-storage-path': when(storagePath, () => 'value does not look like a valid absolute path'),
  // A path inside a property string cannot hold the string's own separators.
  'pve-storage-path-in-property-string': when(
    (v) => storagePath(v) && !/[,=]/.test(v),
    () => 'value does not look like a valid absolute path usable in a property string',
  ),
  'pve-storage-vgname': matching(
    /^[a-z0-9][a-z0-9\-_.]*[a-z0-9]$/i,
    () => 'value does not look like a valid volume group name',
  ),
  'pve-storage-options': matching(/^\S+$/, (show, v) => `invalid options '${show(v)}'`),
  'pve-dir-override': when(dirOverride, (show, v) => `invalid override '${show(v)}'`),
  'disk-size': matching(/^(\d+(\.\d+)?)([KMGT])?$/, (show, v) => `value '${show(v)}' is not a valid disk size`),
  'pve-cpuset': when(cpuset, (show, v) => `invalid cpuset '${show(v)}'`),
  'pve-hotplug-features': (v) => {
    if (v === '0' || v === '1') return undefined;
    for (const f of v.split(/[,;\s]+/).filter((x) => x !== ''))
      if (!HOTPLUG.has(f)) return problem((show) => `invalid hotplug feature '${show(f)}'`);
    return undefined;
  },
  'pve-qm-bootdisk': matching(reDriveName, (show, v) => `invalid boot disk '${show(v)}'`),
  'pve-qm-bootdev': when(
    (v) =>
      reDriveName.test(v) || /^(?:net(?:[0-9]|[12][0-9]|3[01])|hostpci(?:[0-9]|1[0-5])|usb(?:[0-9]|1[0-4]))$/.test(v),
    (show, v) => `invalid boot device '${show(v)}'`,
  ),
  'pve-phys-bits': when(
    (v) => v === 'host' || (/^\d+$/.test(v) && Number(v) >= 8 && Number(v) <= 64),
    (show, v) => `invalid phys-bits '${show(v)}'`,
  ),
  // Not a hash format: PVE parses it by hand (pve_parse_startup_order), and an empty value fails.
  'pve-startup-order': when(
    (v) =>
      v !== '' &&
      v !== '0' &&
      v.split(',').every((p) => /^\s*$/.test(p) || /^(order=)?\d+$/.test(p) || /^(up|down)=\d+$/.test(p)),
    () => 'unable to parse startup options',
  ),
  'pve-ct-timezone': when(timezone, (show, v) => `invalid time zone '${show(v)}'`),
  // PVE registers `string` as a format that accepts anything, so that `string-list` exists.
  string: () => undefined,
  'pve-command-batch': (v) => {
    const message = commandBatch(v);
    return message === undefined ? undefined : problem(message);
  },
  'storage-pair': idPair(
    matching(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, (show, v) => `storage ID '${show(v)}' contains illegal characters`),
  ),
  'bridge-pair': idPair(matching(/^[-_.\w]+$/, (show, v) => `invalid bridge ID '${show(v)}'`)),
  'pem-string': matching(rePemString, () => 'value does not look like a valid PEM string'),
  'pem-certificate': when(
    (v) => reCertificate.test(v.trim()),
    () => 'value does not look like a valid PEM certificate',
  ),
  'pem-certificate-chain': when(certificateChain, () => 'value does not look like a valid PEM certificate chain'),
};
