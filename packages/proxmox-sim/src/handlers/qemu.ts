import { task } from './common.js';
import { applyConfig, guestOf, rebootGuest } from './guest-model.js';
import { createGuest, listGuests, powerTask } from './guests.js';
import type { Routes } from './router.js';

/** Operations only QEMU guests have: their list and create, config (PUT and the async POST), reset and the migrate pre-check. */
export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/qemu', (ctx) => listGuests(ctx, 'qemu'));
  r.on('PUT', '/nodes/{node}/qemu/{vmid}/config', (ctx) => {
    applyConfig(ctx, guestOf(ctx, 'qemu'));
    return null;
  });
  r.on('POST', '/nodes/{node}/qemu/{vmid}/config', (ctx) => {
    const g = guestOf(ctx, 'qemu');
    const error = applyConfig(ctx, g, true);
    return task(
      ctx,
      g.node,
      'qmconfig',
      g.vmid,
      error
        ? () => {
            throw error;
          }
        : undefined,
      [`update VM ${g.vmid}: ${Object.keys(ctx.params).join(' ')}`],
    );
  });

  r.on('POST', '/nodes/{node}/qemu', (ctx) => createGuest(ctx, 'qemu'));
  r.on('POST', '/nodes/{node}/qemu/{vmid}/status/reset', (ctx) =>
    powerTask('reset', (c, g) => rebootGuest(c.state, g))(ctx, 'qemu'),
  );
  r.on('GET', '/nodes/{node}/qemu/{vmid}/migrate', (ctx) => {
    const g = guestOf(ctx, 'qemu');
    const others = [...ctx.state.nodes.values()].filter((n) => n.name !== g.node);
    const local = ctx.state.localDisks(g);
    return {
      running: g.status === 'running' ? 1 : 0,
      allowed_nodes: others.filter((n) => n.online).map((n) => n.name),
      not_allowed_nodes: Object.fromEntries(
        others.filter((n) => !n.online).map((n) => [n.name, { unavailable_storages: [] }]),
      ),
      local_disks: local.map((volid) => ({
        volid,
        size: ctx.state.findVolume(g.node, volid)?.size ?? 0,
        is_unused: 0,
      })),
      local_resources: [],
      'mapped-resources': [],
      'mapped-resource-info': {},
    };
  });
}
