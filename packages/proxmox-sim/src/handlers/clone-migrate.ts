import { formatPropertyString, parsePropertyString } from '../property-string.js';
import { newGuest } from '../seed.js';
import { type ConfigValue, fail, macFor, parseSize, type SimState } from '../state.js';
import { GiB, task } from './common.js';
import { checkLock, guestOf, isTemplate, label, taskPrefix } from './guest-model.js';
import { getPool } from './pools.js';
import type { Routes } from './router.js';

/** Guests: full and linked clones, and migration between nodes with its storage mapping. */

function targetNode(state: SimState, target: string) {
  const n = state.nodes.get(target);
  if (!n) return fail(`no such cluster node '${target}'`);
  if (!n.online) fail(`target node '${target}' is not online`);
  return n;
}

export function register(r: Routes): void {
  r.guest('POST', '/clone', (ctx, type) => {
    const state = ctx.state;
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    const newid = ctx.int('newid');
    if (state.guests.has(newid)) fail(`unable to create ${label(g)} ${newid}: config file already exists`);
    const target = ctx.optStr('target') ?? g.node;
    targetNode(state, target);
    const template = isTemplate(g);
    const full = ctx.bool('full', !template);
    if (!full && !template) fail('linked clone is only possible from a template');
    const storage = ctx.optStr('storage');
    if (storage !== undefined) state.storage(storage);
    if (target !== g.node) {
      const local = state.localDisks(g);
      if (local.length > 0 && (!full || storage === undefined || !state.storage(storage).shared))
        fail(`can't clone ${label(g)} to node '${target}' (${label(g)} uses local storage)`);
    }
    const snapname = ctx.optStr('snapname');
    const source =
      snapname !== undefined
        ? (g.snapshots.get(snapname)?.config ?? fail(`snapshot '${snapname}' does not exist`))
        : g.config;
    const pool = ctx.optStr('pool');
    if (pool !== undefined) getPool(state, pool);
    const name = ctx.optStr(type === 'qemu' ? 'name' : 'hostname');
    const description = ctx.optStr('description');
    // The new guest exists (locked) from the start, as in PVE.
    const config: Record<string, ConfigValue> = { ...source, lock: 'clone' };
    delete config.template;
    const clone = newGuest(state, newid, type, target, config);
    if (!template) g.config.lock = 'clone';
    return task(
      ctx,
      g.node,
      `${taskPrefix(g)}clone`,
      g.vmid,
      () => {
        if (!template) delete g.config.lock;
        const dk = type === 'qemu' ? 'file' : 'volume';
        for (const d of state.diskEntries({ ...g, config: source })) {
          if (/^unused/.test(d.key)) {
            delete clone.config[d.key];
            continue;
          }
          const srcStorage = d.volid.split(':')[0] ?? '';
          const size = d.props.size ? parseSize(d.props.size) : (state.findVolume(g.node, d.volid)?.size ?? GiB);
          let volid: string;
          if (full) {
            volid = state.allocDisk(target, storage ?? srcStorage, newid, size, {
              ...(ctx.optStr('format') ? { format: ctx.optStr('format') as string } : {}),
              content: type === 'qemu' ? 'images' : 'rootdir',
            });
          } else {
            volid = `${srcStorage}:${g.vmid}/${d.volid.split('/').pop()}/${newid}/vm-${newid}-disk-${d.key.replace(/\D/g, '') || '0'}.qcow2`;
            state.volumesOf(target, srcStorage).set(volid, {
              volid,
              format: 'qcow2',
              size,
              content: type === 'qemu' ? 'images' : 'rootdir',
              ctime: state.nowS(),
              vmid: newid,
            });
          }
          clone.config[d.key] = formatPropertyString({ ...d.props, [dk]: volid }, dk);
        }
        for (const key of Object.keys(clone.config)) {
          if (/^net\d+$/.test(key)) {
            const p = parsePropertyString(String(clone.config[key]), type === 'qemu' ? 'model' : 'name');
            if (type === 'qemu') {
              // `virtio=MAC,...` or `model=virtio,macaddr=MAC,...`: give the copy its own MAC.
              const mac = macFor(newid, Number(key.slice(3)));
              const parts = String(clone.config[key])
                .split(',')
                .map((part) => part.replace(/^([\w-]+)=([0-9A-F]{2}(?::[0-9A-F]{2}){5})$/i, `$1=${mac}`));
              clone.config[key] = parts.join(',');
            } else {
              p.hwaddr = macFor(newid, Number(key.slice(3)));
              clone.config[key] = formatPropertyString(p, 'name');
            }
          }
        }
        if (type === 'qemu') clone.config.name = name ?? `Copy-of-VM-${g.config.name ?? g.vmid}`;
        else clone.config.hostname = name ?? `Copy-of-CT-${g.config.hostname ?? g.vmid}`;
        if (description !== undefined) clone.config.description = description;
        delete clone.config.lock;
        if (pool !== undefined) {
          state.pools.get(pool)?.members.add(`${type}/${newid}`);
          clone.pool = pool;
        }
      },
      [`create ${full ? 'full' : 'linked'} clone of drive(s)`],
    );
  });

  r.guest('POST', '/migrate', (ctx, type) => {
    const state = ctx.state;
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    const target = ctx.str('target');
    if (target === g.node) fail('target is local node.');
    targetNode(state, target);
    const running = g.status === 'running';
    if (type === 'qemu') {
      if (running && !ctx.bool('online')) fail(`can't migrate running VM without --online`);
      if (running && state.localDisks(g).length > 0 && !ctx.bool('with-local-disks'))
        fail(`can't live migrate attached local disks without with-local-disks option`);
    } else if (running && !ctx.bool('restart')) fail('lxc live migration is currently not implemented');
    const mapping = ctx.optStr(type === 'qemu' ? 'targetstorage' : 'target-storage');
    const map = (storage: string): string => {
      if (!mapping) return storage;
      let fallback: string | undefined;
      for (const pair of mapping.split(/[,;\s]+/)) {
        const [a, b] = pair.split(':');
        if (b === undefined) fallback = a;
        else if (a === storage) return b;
      }
      return fallback ?? storage;
    };
    if (mapping) for (const s of mapping.split(/[,;\s]+/).flatMap((p) => p.split(':'))) if (s !== '1') state.storage(s);
    const source = g.node;
    g.config.lock = 'migrate';
    return task(
      ctx,
      source,
      type === 'qemu' ? 'qmigrate' : 'vzmigrate',
      g.vmid,
      () => {
        delete g.config.lock;
        state.moveLocalVolumes(g, target, map);
        g.node = target;
        if (type === 'lxc' && running) g.startedAt = state.nowS();
      },
      [
        `starting migration of ${label(g)} ${g.vmid} to node '${target}' (${state.nodes.get(target)?.ip})`,
        ...(running && type === 'qemu' ? ['starting online/live migration', 'migration status: completed'] : []),
        'migration finished successfully (duration 00:00:01)',
      ],
    );
  });
}
