import type { Ctx } from '../context.js';
import { fail, type SimState } from '../state.js';
import { guestStatus } from './guest-model.js';
import type { Routes } from './router.js';

/** Resource pools: listing, creation, membership updates (with allow-move) and deletion. */

function poolMembers(state: SimState, poolid: string): Array<Record<string, unknown>> {
  const pool = state.pools.get(poolid);
  if (!pool) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const m of pool.members) {
    const [kind, id] = m.split('/') as [string, string];
    if (kind === 'storage') {
      for (const n of state.nodes.keys())
        out.push({ id: `storage/${n}/${id}`, type: 'storage', storage: id, node: n, status: 'available' });
    } else {
      const g = state.guests.get(Number(id));
      if (g) out.push({ ...guestStatus(state, g, false), id: `${g.type}/${g.vmid}`, type: g.type, node: g.node });
    }
  }
  return out;
}

export function getPool(state: SimState, poolid: string) {
  const p = state.pools.get(poolid);
  if (!p) return fail(`pool '${poolid}' does not exist`);
  return p;
}

function updatePool(ctx: Ctx, poolid: string): null {
  const state = ctx.state;
  const pool = getPool(state, poolid);
  const comment = ctx.optStr('comment');
  if (comment !== undefined) pool.comment = comment;
  const remove = ctx.bool('delete');
  for (const v of (ctx.optStr('vms') ?? '').split(/[,;\s]+/).filter((x) => x !== '')) {
    const g = state.guests.get(Number(v));
    if (!g) fail(`no such VMID '${v}'`);
    else if (remove) {
      pool.members.delete(`${g.type}/${g.vmid}`);
      g.pool = undefined;
    } else {
      if (g.pool && g.pool !== poolid) {
        if (!ctx.bool('allow-move')) fail(`VM ${v} belongs already to pool '${g.pool}' and allow-move is not set`);
        state.pools.get(g.pool)?.members.delete(`${g.type}/${g.vmid}`);
      }
      pool.members.add(`${g.type}/${g.vmid}`);
      g.pool = poolid;
    }
  }
  for (const s of (ctx.optStr('storage') ?? '').split(/[,;\s]+/).filter((x) => x !== '')) {
    state.storage(s);
    if (remove) pool.members.delete(`storage/${s}`);
    else pool.members.add(`storage/${s}`);
  }
  return null;
}

const deletePool = (ctx: Ctx) => {
  const pool = getPool(ctx.state, ctx.str('poolid'));
  if (pool.members.size > 0) fail(`delete pool failed: pool '${pool.poolid}' is not empty`);
  ctx.state.pools.delete(pool.poolid);
  return null;
};

export function register(r: Routes): void {
  r.on('GET', '/pools', (ctx) => {
    const filter = ctx.optStr('poolid');
    const type = ctx.optStr('type');
    return [...ctx.state.pools.values()]
      .filter((p) => filter === undefined || p.poolid === filter)
      .map((p) => ({
        poolid: p.poolid,
        ...(p.comment !== undefined ? { comment: p.comment } : {}),
        ...(filter !== undefined
          ? { members: poolMembers(ctx.state, p.poolid).filter((m) => type === undefined || m.type === type) }
          : {}),
      }));
  });
  r.on('POST', '/pools', (ctx) => {
    const poolid = ctx.str('poolid');
    if (ctx.state.pools.has(poolid)) fail(`create pool failed: pool '${poolid}' already exists`);
    ctx.state.pools.set(poolid, { poolid, comment: ctx.optStr('comment'), members: new Set() });
    return null;
  });
  r.on('PUT', '/pools', (ctx) => updatePool(ctx, ctx.str('poolid')));
  r.on('PUT', '/pools/{poolid}', (ctx) => updatePool(ctx, ctx.str('poolid')));
  r.on('DELETE', '/pools', deletePool);
  r.on('DELETE', '/pools/{poolid}', deletePool);
  r.on('GET', '/pools/{poolid}', (ctx) => {
    const pool = getPool(ctx.state, ctx.str('poolid'));
    const type = ctx.optStr('type');
    return {
      members: poolMembers(ctx.state, pool.poolid).filter((m) => type === undefined || m.type === type),
      ...(pool.comment !== undefined ? { comment: pool.comment } : {}),
    };
  });
}
