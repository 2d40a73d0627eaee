import type { Ctx } from '../context.js';
import { fail, type Guest } from '../state.js';
import { task } from './common.js';
import { checkLock, configAnswer, guestOf, markRunning, stopGuest, taskPrefix } from './guest-model.js';
import type { Routes } from './router.js';

function snapOf(ctx: Ctx, g: Guest) {
  const name = ctx.str('snapname');
  const s = g.snapshots.get(name);
  if (!s) return fail(`snapshot '${name}' does not exist`);
  return s;
}

export function register(r: Routes): void {
  r.guest('GET', '/snapshot', (ctx, type) => {
    const g = guestOf(ctx, type);
    const list: Array<Record<string, unknown>> = [...g.snapshots.values()]
      .sort((a, b) => a.snaptime - b.snaptime)
      .map((s) => ({
        name: s.name,
        description: s.description,
        snaptime: s.snaptime,
        ...(s.vmstate ? { vmstate: 1 } : {}),
        ...(s.parent !== undefined ? { parent: s.parent } : {}),
      }));
    list.push({
      name: 'current',
      description: 'You are here!',
      digest: ctx.state.digest(g.config),
      running: g.status === 'running' ? 1 : 0,
      ...(g.parent !== undefined ? { parent: g.parent } : {}),
    });
    return list;
  });
  r.guest('POST', '/snapshot', (ctx, type) => {
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    const name = ctx.str('snapname');
    if (name === 'current' || name === 'vzdump') fail(`invalid snapshot name '${name}'`);
    if (g.snapshots.has(name)) fail(`snapshot name '${name}' already used`);
    const vmstate = type === 'qemu' && ctx.bool('vmstate');
    const description = ctx.optStr('description') ?? '';
    g.config.lock = 'snapshot';
    return task(
      ctx,
      g.node,
      `${taskPrefix(g)}snapshot`,
      g.vmid,
      () => {
        delete g.config.lock;
        const config = { ...g.config };
        g.snapshots.set(name, {
          name,
          description,
          snaptime: ctx.state.nowS(),
          vmstate: vmstate && g.status === 'running',
          parent: g.parent,
          config,
          running: g.status === 'running',
        });
        g.parent = name;
      },
      [`snapshotting '${name}'`],
    );
  });

  r.guest('DELETE', '/snapshot/{snapname}', (ctx, type) => {
    const g = guestOf(ctx, type);
    if (!ctx.bool('force')) checkLock(ctx, g);
    const s = snapOf(ctx, g);
    return task(ctx, g.node, `${taskPrefix(g)}delsnapshot`, g.vmid, () => {
      for (const other of g.snapshots.values()) if (other.parent === s.name) other.parent = s.parent;
      if (g.parent === s.name) g.parent = s.parent;
      g.snapshots.delete(s.name);
    });
  });
  r.guest('GET', '/snapshot/{snapname}/config', (ctx, type) => {
    const g = guestOf(ctx, type);
    return configAnswer(ctx.state, g, snapOf(ctx, g).config);
  });
  r.guest('PUT', '/snapshot/{snapname}/config', (ctx, type) => {
    const g = guestOf(ctx, type);
    const s = snapOf(ctx, g);
    const d = ctx.optStr('description');
    if (d !== undefined) s.description = d;
    return null;
  });
  r.guest('POST', '/snapshot/{snapname}/rollback', (ctx, type) => {
    const g = guestOf(ctx, type);
    checkLock(ctx, g);
    const s = snapOf(ctx, g);
    const start = ctx.bool('start');
    return task(ctx, g.node, `${taskPrefix(g)}rollback`, g.vmid, () => {
      g.config = { ...s.config };
      delete g.config.lock;
      g.parent = s.name;
      if (s.vmstate || start) markRunning(ctx.state, g);
      else stopGuest(ctx.state, g);
    });
  });
}
