import { storedCloudInitValue } from '../cloud-init-data.js';
import type { Ctx } from '../context.js';
import { parsePropertyString } from '../property-string.js';
import {
  type ConfigValue,
  fail,
  type Guest,
  type GuestType,
  isDiskKey,
  parseSize,
  type SimState,
  WorkerError,
} from '../state.js';
import { MiB, toConfigValue } from './common.js';

/** A guest's derived state as PVE answers it (status, config with secrets masked) and the config
 * update rules (allocations, unused disks, digest and lock checks) shared by QEMU and LXC. */

export const guestOf = (ctx: Ctx, type: GuestType): Guest => ctx.state.guest(ctx.str('node'), ctx.int('vmid'), type);
export const label = (g: Guest) => (g.type === 'qemu' ? 'VM' : 'CT');
export const taskPrefix = (g: Guest) => (g.type === 'qemu' ? 'qm' : 'vz');

export function checkLock(ctx: Ctx, g: Guest): void {
  const lock = g.config.lock;
  if (lock !== undefined && !ctx.bool('skiplock')) fail(`${label(g)} is locked (${lock})`);
}

export function memoryMiB(g: Guest): number {
  const m = g.config.memory;
  if (m === undefined) return g.type === 'qemu' ? 512 : 512;
  if (typeof m === 'number') return m;
  return Number(parsePropertyString(m, 'current').current ?? 512);
}

export function cpus(g: Guest): number {
  const cores = Number(g.config.cores ?? 1);
  return g.type === 'qemu' ? cores * Number(g.config.sockets ?? 1) : cores;
}

export function agentEnabled(g: Guest): boolean {
  const a = g.config.agent;
  if (a === undefined) return false;
  const en = parsePropertyString(String(a), 'enabled').enabled ?? '0';
  return /^(1|true|yes|on)$/i.test(en);
}

export function maxdisk(state: SimState, g: Guest): number {
  let total = 0;
  for (const d of state.diskEntries(g)) {
    if (/^unused/.test(d.key)) continue;
    total += d.props.size ? parseSize(d.props.size) : (state.findVolume(g.node, d.volid)?.size ?? 0);
  }
  return total;
}

export function isTemplate(g: Guest): boolean {
  return Number(g.config.template ?? 0) === 1;
}

export function guestStatus(state: SimState, g: Guest, full = true): Record<string, unknown> {
  const online = state.nodes.get(g.node)?.online !== false;
  const running = g.status === 'running';
  const maxmem = memoryMiB(g) * MiB;
  const s: Record<string, unknown> = {
    vmid: g.vmid,
    name: String(g.config.name ?? g.config.hostname ?? ''),
    status: online ? g.status : 'unknown',
    uptime: running ? Math.max(0, state.nowS() - g.startedAt) : 0,
    cpus: cpus(g),
    cpu: running ? (g.vmid % 10) / 100 : 0,
    maxmem,
    mem: running ? Math.floor(maxmem * 0.4) : 0,
    maxdisk: maxdisk(state, g),
    disk: 0,
    netin: running ? g.vmid * 1000 : 0,
    netout: running ? g.vmid * 500 : 0,
    diskread: running ? g.vmid * 4096 : 0,
    diskwrite: running ? g.vmid * 2048 : 0,
  };
  if (g.type === 'lxc') {
    s.type = 'lxc';
    s.maxswap = Number(g.config.swap ?? 512) * MiB;
    s.swap = 0;
  }
  if (running) s.pid = 10000 + g.vmid;
  if (isTemplate(g)) s.template = 1;
  if (g.config.lock !== undefined) s.lock = String(g.config.lock);
  if (g.config.tags !== undefined) s.tags = String(g.config.tags);
  if (full && g.type === 'qemu') {
    s.qmpstatus = online ? g.qmpstatus : 'unknown';
    if (agentEnabled(g)) s.agent = 1;
    s.ha = { managed: 0 };
    if (running) {
      s['running-machine'] = 'pc-i440fx-9.2+pve1';
      s['running-qemu'] = '9.2.0';
    }
    s.serial = 0;
  }
  return s;
}

/** Config as PVE answers it: booleans as 1/0, secrets masked, plus the digest. */
export function configAnswer(state: SimState, _g: Guest, config: Record<string, ConfigValue>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if (out.cipassword !== undefined) out.cipassword = '**********';
  out.digest = state.digest(config);
  return out;
}
export const NOT_CONFIG = new Set([
  'node',
  'vmid',
  'delete',
  'digest',
  'skiplock',
  'background_delay',
  'revert',
  'force',
  'start',
  'pool',
  'archive',
  'storage',
  'unique',
  'live-restore',
  'bwlimit',
  'import-working-storage',
  'ostemplate',
  'password',
  'ssh-public-keys',
  'restore',
  'ignore-unpack-errors',
  'ha-managed',
]);

function nextUnused(g: Guest): string {
  let i = 0;
  while (g.config[`unused${i}`] !== undefined) i++;
  return `unused${i}`;
}

/**
 * Applies a config update (PUT or POST): sets, allocations, deletions; checks digest and lock.
 * With `worker` (the asynchronous POST), a disk that PVE's worker would fail to create is left
 * out and its error returned, for the task to end with; otherwise it is thrown.
 */
export function applyConfig(ctx: Ctx, g: Guest, worker = false): WorkerError | undefined {
  let workerError: WorkerError | undefined;
  checkLock(ctx, g);
  const digest = ctx.optStr('digest');
  if (digest !== undefined && digest !== ctx.state.digest(g.config))
    fail('detected modified configuration - file changed by other user? Try again.');
  const state = ctx.state;
  for (const [key, value] of Object.entries(ctx.params)) {
    if (NOT_CONFIG.has(key)) continue;
    let v = storedCloudInitValue(key, toConfigValue(value));
    if (isDiskKey(g.type, key) && typeof v === 'string') {
      const prev = g.config[key];
      try {
        v = state.allocateDiskSpec(g, key, v);
      } catch (e) {
        if (!(worker && e instanceof WorkerError)) throw e;
        workerError ??= e;
        continue;
      }
      if (prev !== undefined && !/^unused/.test(key)) {
        const dk = g.type === 'qemu' ? 'file' : 'volume';
        const oldVol = parsePropertyString(String(prev), dk)[dk];
        const newVol = parsePropertyString(v, dk)[dk];
        if (oldVol && oldVol !== newVol && state.findVolume(g.node, oldVol)) g.config[nextUnused(g)] = oldVol;
      }
    }
    g.config[key] = v;
  }
  const del = ctx.optStr('delete');
  if (del) {
    for (const key of del.split(/[,;\s]+/).filter((k) => k !== '')) {
      const prev = g.config[key];
      if (prev === undefined) continue;
      delete g.config[key];
      if (isDiskKey(g.type, key)) {
        const dk = g.type === 'qemu' ? 'file' : 'volume';
        const vol = parsePropertyString(String(prev), dk)[dk] ?? '';
        if (/^unused/.test(key)) {
          const storage = vol.split(':')[0] ?? '';
          if (state.storages.has(storage)) state.volumesOf(g.node, storage).delete(vol);
        } else if (state.findVolume(g.node, vol)) g.config[nextUnused(g)] = vol;
      }
    }
  }
  return workerError;
}

export function startGuest(state: SimState, g: Guest): void {
  if (g.status === 'running') fail(`${label(g)} ${g.vmid} already running`);
  if (isTemplate(g)) fail(`you can't start a ${g.type === 'qemu' ? 'vm' : 'container'} if it's a template`);
  if (g.config.lock === 'suspended') delete g.config.lock;
  markRunning(state, g);
}

/** The guest runs from now on (a start, or a rollback to a snapshot with RAM). */
export function markRunning(state: SimState, g: Guest): void {
  const was = g.status === 'running';
  g.status = 'running';
  g.qmpstatus = 'running';
  g.startedAt = state.nowS();
  state.emitGuestPower(g, was ? 'reboot' : 'start');
}

/** A reboot or reset: the guest OS starts anew, the VM keeps running. */
export function rebootGuest(state: SimState, g: Guest): void {
  requireRunning(g);
  g.qmpstatus = 'running';
  g.startedAt = state.nowS();
  state.emitGuestPower(g, 'reboot');
}

export function requireRunning(g: Guest): void {
  if (g.status !== 'running') fail(`${label(g)} ${g.vmid} not running`);
}

export function stopGuest(state: SimState, g: Guest): void {
  const was = g.status === 'running';
  g.status = 'stopped';
  g.qmpstatus = 'stopped';
  g.startedAt = 0;
  if (was) state.emitGuestPower(g, 'stop');
}
