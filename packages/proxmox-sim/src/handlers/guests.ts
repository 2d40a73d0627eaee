import { storedCloudInitValue } from '../cloud-init-data.js';
import type { Ctx } from '../context.js';
import { formatPropertyString, parsePropertyString } from '../property-string.js';
import { newGuest } from '../seed.js';
import {
  type ConfigValue,
  fail,
  formatSize,
  type Guest,
  type GuestType,
  isDiskKey,
  macFor,
  PveError,
  parseSize,
  WorkerError,
} from '../state.js';
import { MiB, task, toConfigValue } from './common.js';
import {
  checkLock,
  configAnswer,
  guestOf,
  guestStatus,
  isTemplate,
  label,
  memoryMiB,
  NOT_CONFIG,
  rebootGuest,
  requireRunning,
  startGuest,
  stopGuest,
  taskPrefix,
} from './guest-model.js';
import { getPool } from './pools.js';
import type { Routes } from './router.js';

/**
 * Guests, QEMU and LXC alike: lists, status, config, create/delete, power, template and resize.
 * Operations with only one of the two kinds live in qemu.ts and lxc.ts.
 */

export const listGuests = (ctx: Ctx, type: GuestType) => {
  const node = ctx.str('node');
  const out: Array<Record<string, unknown>> = [];
  for (const g of ctx.state.guests.values())
    if (g.node === node && g.type === type) out.push(guestStatus(ctx.state, g, ctx.bool('full')));
  return out;
};

export function createGuest(ctx: Ctx, type: GuestType): string {
  const state = ctx.state;
  const node = ctx.str('node');
  const vmid = ctx.int('vmid');
  const existing = state.guests.get(vmid);
  if (existing)
    fail(
      `unable to create ${type === 'qemu' ? 'VM' : 'CT'} ${vmid} - ${label(existing)} ${vmid} already exists on node '${existing.node}'`,
    );
  const pool = ctx.optStr('pool');
  if (pool !== undefined) getPool(state, pool);
  const config: Record<string, ConfigValue> = {};
  const g = newGuest(state, vmid, type, node, config);
  const remove = () => {
    state.removeGuestVolumes(g, true);
    if (g.pool) state.pools.get(g.pool)?.members.delete(`${type}/${vmid}`);
    if (state.guests.get(vmid) === g) state.guests.delete(vmid);
  };
  // What qemu-server's worker fails on (an import source that is not there) fails the task.
  let workerError: WorkerError | undefined;
  try {
    if (type === 'lxc') {
      const tmpl = ctx.optStr('ostemplate');
      if (tmpl === undefined && !ctx.has('restore')) fail('missing ostemplate', 400);
      if (tmpl !== undefined && !state.findVolume(node, tmpl)) fail(`volume '${tmpl}' does not exist`);
      config.hostname = ctx.optStr('hostname') ?? `CT${vmid}`;
      config.memory = 512;
      config.swap = 512;
      config.cores = 1;
      config.arch = 'amd64';
      config.ostype = 'debian';
      if (!ctx.has('rootfs'))
        config.rootfs = state.allocateDiskSpec(g, 'rootfs', `${ctx.optStr('storage') ?? 'local'}:4`);
    } else {
      config.meta = `creation-qemu=9.2.0,ctime=${state.nowS()}`;
      config.smbios1 = `uuid=00000000-0000-4000-8000-${String(vmid).padStart(12, '0')}`;
      config.vmgenid = `00000000-0000-4000-9000-${String(vmid).padStart(12, '0')}`;
    }
    for (const [key, value] of Object.entries(ctx.params)) {
      if (NOT_CONFIG.has(key)) continue;
      let v = storedCloudInitValue(key, toConfigValue(value));
      if (isDiskKey(type, key) && typeof v === 'string') {
        try {
          v = state.allocateDiskSpec(g, key, v);
        } catch (e) {
          if (!(e instanceof WorkerError)) throw e;
          workerError ??= e;
          continue;
        }
      }
      if (/^net\d+$/.test(key) && typeof v === 'string') v = withMac(type, v, vmid, Number(key.slice(3)));
      config[key] = v;
    }
  } catch (e) {
    remove();
    throw e;
  }
  config.lock = 'create';
  if (pool !== undefined) {
    state.pools.get(pool)?.members.add(`${type}/${vmid}`);
    g.pool = pool;
  }
  const start = ctx.bool('start');
  const upid = task(
    ctx,
    node,
    `${type === 'qemu' ? 'qm' : 'vz'}create`,
    vmid,
    () => {
      if (workerError) throw new PveError(500, `unable to create ${label(g)} ${vmid} - ${workerError.message}`);
      delete g.config.lock;
      if (start) startGuest(state, g);
    },
    type === 'lxc'
      ? [`extracting archive '${ctx.optStr('ostemplate') ?? ''}'`, 'Total bytes read: 524288000 (500MiB, 250MiB/s)']
      : [],
  );
  // A failed create leaves nothing behind: PVE destroys the config and the disks it made.
  const t = state.tasks.get(upid);
  if (t && t.status === 'running') t.onFail = remove;
  else if (t && t.exitstatus !== 'OK') remove();
  return upid;
}

function withMac(type: GuestType, value: string, vmid: number, index: number): string {
  if (type === 'lxc') {
    const p = parsePropertyString(value, 'name');
    if (p.hwaddr === undefined) return `${value},hwaddr=${macFor(vmid, index)}`;
    return value;
  }
  const p = parsePropertyString(value, 'model');
  const model = p.model;
  if (model !== undefined && p.macaddr === undefined) {
    delete p.model;
    return formatPropertyString({ [model]: macFor(vmid, index), ...p });
  }
  return value;
}

export function powerTask(name: string, action: (ctx: Ctx, g: Guest) => void) {
  return (ctx: Ctx, type: GuestType) => {
    const g = guestOf(ctx, type);
    // A VM suspended to disk is resumed by starting it, as in PVE.
    if (!(name === 'start' && g.config.lock === 'suspended')) checkLock(ctx, g);
    return task(ctx, g.node, `${taskPrefix(g)}${name}`, g.vmid, () => action(ctx, g));
  };
}

export function register(r: Routes): void {
  r.guest('GET', '/status/current', (ctx, type) => guestStatus(ctx.state, guestOf(ctx, type)));

  r.guest('GET', '/config', (ctx, type) => {
    const g = guestOf(ctx, type);
    const snapname = ctx.optStr('snapshot');
    if (snapname !== undefined) {
      const snap = g.snapshots.get(snapname);
      if (!snap) fail(`snapshot '${snapname}' does not exist`);
      return configAnswer(ctx.state, g, snap?.config ?? {});
    }
    return configAnswer(ctx.state, g, g.config);
  });
  r.guest('GET', '/pending', (ctx, type) => {
    const g = guestOf(ctx, type);
    return Object.entries(g.config).map(([key, value]) => ({
      key,
      value: key === 'cipassword' ? '**********' : value,
    }));
  });
  r.guest('DELETE', '', (ctx, type) => {
    const state = ctx.state;
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    if (g.status === 'running' && !(type === 'lxc' && ctx.bool('force')))
      fail(`${label(g)} ${g.vmid} is running - destroy failed`);
    if (Number(g.config.protection ?? 0) === 1) fail(`can't remove ${label(g)} ${g.vmid} - protection mode enabled`);
    const unreferenced = ctx.bool('destroy-unreferenced-disks', type === 'lxc');
    return task(
      ctx,
      g.node,
      `${taskPrefix(g)}destroy`,
      g.vmid,
      () => {
        state.removeGuestVolumes(g, unreferenced);
        if (g.pool) state.pools.get(g.pool)?.members.delete(`${g.type}/${g.vmid}`);
        state.guests.delete(g.vmid);
        state.emitGuestPower(g, 'destroy');
      },
      [`destroying ${label(g)} ${g.vmid}`],
    );
  });

  r.guest(
    'POST',
    '/status/start',
    powerTask('start', (ctx, g) => startGuest(ctx.state, g)),
  );
  r.guest(
    'POST',
    '/status/stop',
    powerTask('stop', (ctx, g) => stopGuest(ctx.state, g)),
  );
  r.guest(
    'POST',
    '/status/shutdown',
    powerTask('shutdown', (ctx, g) => {
      requireRunning(g);
      stopGuest(ctx.state, g);
    }),
  );
  r.guest(
    'POST',
    '/status/reboot',
    powerTask('reboot', (ctx, g) => rebootGuest(ctx.state, g)),
  );
  r.guest('POST', '/status/suspend', (ctx, type) => {
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    const todisk = ctx.bool('todisk');
    const storage = ctx.optStr('statestorage');
    return task(ctx, g.node, `${taskPrefix(g)}suspend`, g.vmid, () => {
      requireRunning(g);
      if (todisk) {
        const vol = ctx.state.allocDisk(g.node, storage ?? 'local', g.vmid, memoryMiB(g) * MiB);
        g.config.vmstate = vol;
        g.config.lock = 'suspended';
        stopGuest(ctx.state, g);
      } else g.qmpstatus = 'paused';
    });
  });
  r.guest('POST', '/status/resume', (ctx, type) => {
    const g = guestOf(ctx, type);
    return task(ctx, g.node, `${taskPrefix(g)}resume`, g.vmid, () => {
      if (g.config.lock === 'suspended') {
        // Resuming from disk is a start that restores the state.
        delete g.config.lock;
        const vol = String(g.config.vmstate ?? '');
        delete g.config.vmstate;
        const storage = vol.split(':')[0] ?? '';
        if (ctx.state.storages.has(storage)) ctx.state.volumesOf(g.node, storage).delete(vol);
        startGuest(ctx.state, g);
        return;
      }
      requireRunning(g);
      g.qmpstatus = 'running';
    });
  });

  r.guest('POST', '/template', (ctx, type) => {
    const state = ctx.state;
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    if (g.status === 'running')
      fail(
        `you can't convert a ${type === 'qemu' ? 'VM' : 'CT'} to template if ${type === 'qemu' ? 'VM' : 'CT'} is running`,
      );
    if (isTemplate(g)) fail(`${label(g)} ${g.vmid} is already a template`);
    return task(ctx, g.node, `${taskPrefix(g)}template`, g.vmid, () => {
      const dk = g.type === 'qemu' ? 'file' : 'volume';
      for (const d of state.diskEntries(g)) {
        if (!d.volid.includes('/vm-') && !/:vm-/.test(d.volid)) continue;
        const storage = d.volid.split(':')[0] ?? '';
        const vols = state.volumesOf(g.node, storage);
        const vol = vols.get(d.volid);
        const renamed = d.volid.replace(/(^|[/:])vm-/, '$1base-');
        if (vol) {
          vols.delete(d.volid);
          vols.set(renamed, { ...vol, volid: renamed });
        }
        g.config[d.key] = formatPropertyString({ ...d.props, [dk]: renamed }, dk);
      }
      g.config.template = 1;
    });
  });

  r.guest('PUT', '/resize', (ctx, type) => {
    const state = ctx.state;
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    const disk = ctx.str('disk');
    const value = g.config[disk];
    if (value === undefined || !isDiskKey(type, disk)) fail(`no such disk '${disk}'`);
    const dk = type === 'qemu' ? 'file' : 'volume';
    const props = parsePropertyString(String(value), dk);
    const vol = state.findVolume(g.node, props[dk] ?? '');
    const current = props.size ? parseSize(props.size) : (vol?.size ?? 0);
    const spec = ctx.str('size');
    const m = /^(\+)?(\d+(?:\.\d+)?[KMGT]?)$/i.exec(spec);
    if (!m) return fail(`invalid size '${spec}'`, 400);
    const delta = parseSize(m[2] as string);
    const next = m[1] ? current + delta : delta;
    if (next < current) fail(`shrinking disks is not supported`);
    return task(ctx, g.node, 'resize', g.vmid, () => {
      props.size = formatSize(next);
      g.config[disk] = formatPropertyString(props, dk);
      if (vol) vol.size = next;
    });
  });
}
