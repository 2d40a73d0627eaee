import { metaData, networkData, userData } from '../cloud-init-data.js';
import { guestOf } from './guest-model.js';
import type { Routes } from './router.js';

/** Cloud-init of QEMU guests: the pending settings and the generated user/network/meta documents
 * (cloud-init-data.ts), as `qm cloudinit dump` shows them. */

const CLOUD_INIT_KEY = /^(ciuser|cipassword|sshkeys|ipconfig\d+|nameserver|searchdomain|citype|ciupgrade|cicustom)$/;

export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/qemu/{vmid}/cloudinit', (ctx) => {
    const g = guestOf(ctx, 'qemu');
    return Object.entries(g.config)
      .filter(([k]) => CLOUD_INIT_KEY.test(k))
      .map(([key, value]) => ({ key, value: key === 'cipassword' ? '**********' : value }));
  });
  // The drive is regenerated from the config at every start; there is nothing pending to apply.
  r.on('PUT', '/nodes/{node}/qemu/{vmid}/cloudinit', (ctx) => {
    guestOf(ctx, 'qemu');
    return null;
  });
  r.on('GET', '/nodes/{node}/qemu/{vmid}/cloudinit/dump', (ctx) => {
    const g = guestOf(ctx, 'qemu');
    const kind = ctx.str('type');
    if (kind === 'user') return userData(g.config, g.vmid);
    if (kind === 'network') return networkData(g.config);
    return metaData(g.config, g.vmid);
  });
}
