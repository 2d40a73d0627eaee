import type { InstanceState } from '../../model/instance.js';

/**
 * Proxmox VE's guest states as hypeman's. PVE says three things: `status` (cluster/resources and
 * status/current: running, stopped, paused, suspended, prelaunch, unknown), the config's `lock`
 * (create, clone, suspended, migrate, backup, ...) and, for a running VM, QEMU's own run state
 * `qmpstatus` (status/current only). They combine as follows; STATES.md has the same table.
 *
 * | status                | lock                         | qmpstatus                        | hypeman      |
 * | --------------------- | ---------------------------- | -------------------------------- | ------------ |
 * | running               | any                          | running, absent, *migrate        | Running      |
 * | running               | any                          | paused, suspended                | Paused       |
 * | running               | any                          | shutdown                         | Shutdown     |
 * | running               | any                          | prelaunch                        | Created      |
 * | running               | any                          | internal-error, guest-panicked, io-error | Unknown |
 * | paused                | any                          | any                              | Paused       |
 * | suspended             | any                          | any                              | Paused       |
 * | prelaunch             | any                          | any                              | Created      |
 * | stopped               | suspended                    | -                                | Standby      |
 * | stopped               | create, clone                | -                                | Created      |
 * | stopped               | absent or another            | -                                | Stopped      |
 * | unknown, other        | any                          | any                              | Unknown      |
 *
 * A hibernated VM (`suspend` with `todisk=1`) is stopped with `lock: suspended` and its RAM in a
 * `vmstate` volume: that is hypeman's Standby, and `start` resumes it. A paused VM (`suspend`
 * without todisk, or QEMU's S3 `suspended`) keeps its RAM in the QEMU process: Paused. A guest
 * that powered itself off inside a QEMU told not to exit shows `qmpstatus: shutdown`: Shutdown.
 * `unknown` is what PVE answers for guests on a node it cannot reach.
 *
 * LXC containers: running → Running, stopped → Stopped (Created under a create/clone lock),
 * paused (frozen with `lxc suspend`) → Paused, anything else → Unknown.
 */
export function hypemanState(
  type: 'qemu' | 'lxc',
  status: string | undefined,
  lock?: string | undefined,
  qmpstatus?: string | undefined,
): InstanceState {
  const making = lock === 'create' || lock === 'clone';
  if (type === 'lxc') {
    if (status === 'running') return 'Running';
    if (status === 'stopped') return making ? 'Created' : 'Stopped';
    if (status === 'paused' || status === 'frozen') return 'Paused';
    return 'Unknown';
  }
  switch (status) {
    case 'running':
      switch (qmpstatus) {
        case undefined:
        case 'running':
        case 'inmigrate':
        case 'postmigrate':
        case 'finish-migrate':
        case 'save-vm':
        case 'restore-vm':
        case 'debug':
          return 'Running';
        case 'paused':
        case 'suspended':
          return 'Paused';
        case 'shutdown':
          return 'Shutdown';
        case 'prelaunch':
          return 'Created';
        default:
          return 'Unknown';
      }
    case 'paused':
    case 'suspended':
      return 'Paused';
    case 'prelaunch':
      return 'Created';
    case 'stopped':
      if (lock === 'suspended') return 'Standby';
      return making ? 'Created' : 'Stopped';
    default:
      return 'Unknown';
  }
}

/** The backend's own words for a state, for `backendStatus`: `running`, `stopped (lock: suspended)`. */
export function backendStatus(status: string | undefined, lock?: string, qmpstatus?: string): string {
  const parts = [status ?? 'unknown'];
  if (qmpstatus && qmpstatus !== status) parts.push(`qmp: ${qmpstatus}`);
  if (lock) parts.push(`lock: ${lock}`);
  return parts.length === 1 ? (parts[0] ?? 'unknown') : `${parts[0]} (${parts.slice(1).join(', ')})`;
}
