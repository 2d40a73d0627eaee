import { PveError } from '../state.js';
import { taskInfo, VERSION } from './common.js';
import { guestStatus, isTemplate } from './guest-model.js';
import type { Routes } from './router.js';
import { nodeSummary, storageStatus } from './summaries.js';

/** Cluster-wide reads: version, status, resources (with the type filter), tasks and nextid. */

export function register(r: Routes): void {
  r.on('GET', '/version', () => ({ ...VERSION }));
  r.on('GET', '/nodes/{node}/version', () => ({
    version: VERSION.version,
    release: VERSION.release,
    repoid: VERSION.repoid,
  }));

  r.on('GET', '/cluster/status', (ctx) => {
    const state = ctx.state;
    const local = state.localNode().name;
    const nodes = [...state.nodes.values()];
    return [
      {
        type: 'cluster',
        id: 'cluster',
        name: state.clusterName,
        nodes: nodes.length,
        quorate: nodes.filter((n) => n.online).length * 2 > nodes.length ? 1 : 0,
        version: nodes.length + 2,
      },
      ...nodes.map((n) => ({
        type: 'node',
        id: `node/${n.name}`,
        name: n.name,
        nodeid: n.nodeid,
        ip: n.ip,
        online: n.online ? 1 : 0,
        local: n.name === local ? 1 : 0,
        level: '',
      })),
    ];
  });

  r.on('GET', '/cluster/resources', (ctx) => {
    const state = ctx.state;
    const type = ctx.optStr('type');
    const out: Array<Record<string, unknown>> = [];
    if (type === undefined || type === 'node') {
      for (const n of state.nodes.keys()) out.push({ ...nodeSummary(state, n), 'cgroup-mode': 2 });
    }
    if (type === undefined || type === 'vm') {
      for (const g of state.guests.values()) {
        const s = guestStatus(state, g, false);
        delete s.type;
        out.push({
          ...s,
          id: `${g.type}/${g.vmid}`,
          type: g.type,
          node: g.node,
          template: isTemplate(g) ? 1 : 0,
          hastate: undefined,
          ...(g.pool ? { pool: g.pool } : {}),
        });
      }
    }
    if (type === undefined || type === 'storage') {
      for (const n of state.nodes.values()) {
        for (const def of state.storages.values()) {
          const st = storageStatus(state, n.name, def.storage);
          out.push({
            id: `storage/${n.name}/${def.storage}`,
            type: 'storage',
            storage: def.storage,
            node: n.name,
            status: n.online ? 'available' : 'unknown',
            shared: def.shared ? 1 : 0,
            content: def.content.join(','),
            plugintype: def.type,
            disk: st.used,
            maxdisk: st.total,
          });
        }
      }
    }
    if (type === undefined || type === 'pool') {
      for (const p of state.pools.values()) out.push({ id: `/pool/${p.poolid}`, type: 'pool', pool: p.poolid });
    }
    for (const o of out) for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
    return out;
  });

  r.on('GET', '/cluster/tasks', (ctx) =>
    ctx.state.taskOrder
      .slice(-500)
      .reverse()
      .map((t) => taskInfo(t)),
  );

  r.on('GET', '/cluster/nextid', (ctx) => {
    const want = ctx.optInt('vmid');
    if (want !== undefined) {
      if (ctx.state.guests.has(want))
        throw new PveError(400, 'Parameter verification failed.', { vmid: `VM ${want} already exists` });
      return String(want);
    }
    return String(ctx.state.nextVmid(100));
  });
}
