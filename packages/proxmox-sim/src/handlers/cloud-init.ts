import { parsePropertyString } from '../property-string.js';
import { guestOf } from './guest-model.js';
import type { Routes } from './router.js';

/** Cloud-init of QEMU guests: the pending settings and the generated user/network/meta documents. */

export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/qemu/{vmid}/cloudinit', (ctx) => {
    const g = guestOf(ctx, 'qemu');
    return Object.entries(g.config)
      .filter(([k]) => /^(ciuser|cipassword|sshkeys|ipconfig\d+|nameserver|searchdomain|citype|ciupgrade)$/.test(k))
      .map(([key, value]) => ({ key, value: key === 'cipassword' ? '**********' : value }));
  });
  r.on('PUT', '/nodes/{node}/qemu/{vmid}/cloudinit', () => null);
  r.on('GET', '/nodes/{node}/qemu/{vmid}/cloudinit/dump', (ctx) => {
    const g = guestOf(ctx, 'qemu');
    const kind = ctx.str('type');
    const c = g.config;
    if (kind === 'user') {
      const keys =
        c.sshkeys !== undefined
          ? decodeURIComponent(String(c.sshkeys))
              .split('\n')
              .filter((k) => k !== '')
          : [];
      return [
        '#cloud-config',
        `hostname: ${c.name ?? `vm${g.vmid}`}`,
        'manage_etc_hosts: true',
        `user: ${c.ciuser ?? 'root'}`,
        ...(c.cipassword !== undefined ? [`password: ${c.cipassword}`] : []),
        ...(keys.length > 0 ? ['ssh_authorized_keys:', ...keys.map((k) => `  - ${k}`)] : []),
        'chpasswd:',
        '  expire: False',
        'package_upgrade: true',
        '',
      ].join('\n');
    }
    if (kind === 'network') {
      const lines = ['version: 1', 'config:'];
      for (const [k, v] of Object.entries(c)) {
        const m = /^ipconfig(\d+)$/.exec(k);
        if (!m) continue;
        const p = parsePropertyString(String(v));
        lines.push(`    - type: physical`, `      name: eth${m[1]}`, `      subnets:`);
        if (p.ip === 'dhcp') lines.push('      - type: dhcp4');
        else if (p.ip)
          lines.push(
            '      - type: static',
            `        address: '${p.ip}'`,
            ...(p.gw ? [`        gateway: '${p.gw}'`] : []),
          );
      }
      if (c.nameserver !== undefined)
        lines.push('    - type: nameserver', '      address:', `      - '${c.nameserver}'`);
      return `${lines.join('\n')}\n`;
    }
    return `instance-id: ${ctx.state.digest(c)}\n`;
  });
}
