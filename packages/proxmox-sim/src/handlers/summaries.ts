import type { SimState } from '../state.js';
import { GiB, MiB } from './common.js';
import { memoryMiB } from './guest-model.js';

/** Node and storage summaries, shared by the cluster, node and storage answers. */

export function nodeSummary(state: SimState, name: string): Record<string, unknown> {
  const n = state.node(name);
  let mem = 2 * GiB;
  let cpu = 0.02;
  for (const g of state.guests.values()) {
    if (g.node === name && g.status === 'running') {
      mem += memoryMiB(g) * MiB * 0.4;
      cpu += 0.01;
    }
  }
  return {
    node: n.name,
    id: `node/${n.name}`,
    type: 'node',
    status: n.online ? 'online' : 'offline',
    level: '',
    ...(n.online
      ? {
          cpu: Math.min(1, cpu),
          maxcpu: n.maxcpu,
          mem: Math.floor(Math.min(mem, n.maxmem)),
          maxmem: n.maxmem,
          disk: 12 * GiB,
          maxdisk: 100 * GiB,
          uptime: state.nowS() - n.startedAt,
        }
      : {}),
  };
}

export function storageStatus(state: SimState, node: string, storage: string): Record<string, unknown> {
  const def = state.storage(storage);
  const { used, total } = state.storageUsage(node, storage);
  return {
    storage,
    type: def.type,
    content: def.content.join(','),
    shared: def.shared ? 1 : 0,
    active: 1,
    enabled: 1,
    total,
    used,
    avail: total - used,
    used_fraction: total > 0 ? used / total : 0,
  };
}
