import { parsePropertyString } from '../property-string.js';
import { fail, ipFor, macFor } from '../state.js';
import { applyConfig, guestOf } from './guest-model.js';
import { createGuest, listGuests } from './guests.js';
import type { Routes } from './router.js';

/** Operations only LXC containers have: their list and create, config, the migrate pre-check and interfaces. */
export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/lxc', (ctx) => listGuests(ctx, 'lxc'));

  r.on('PUT', '/nodes/{node}/lxc/{vmid}/config', (ctx) => {
    applyConfig(ctx, guestOf(ctx, 'lxc'));
    return null;
  });
  r.on('POST', '/nodes/{node}/lxc', (ctx) => createGuest(ctx, 'lxc'));

  r.on('GET', '/nodes/{node}/lxc/{vmid}/interfaces', (ctx) => {
    const g = guestOf(ctx, 'lxc');
    if (g.status !== 'running') fail(`CT ${g.vmid} not running`);
    const out: Array<Record<string, string>> = [
      { name: 'lo', hwaddr: '00:00:00:00:00:00', inet: '127.0.0.1/8', inet6: '::1/128' },
    ];
    for (const [key, value] of Object.entries(g.config)) {
      const m = /^net(\d+)$/.exec(key);
      if (!m) continue;
      const p = parsePropertyString(String(value), 'name');
      const ip = p.ip && p.ip !== 'dhcp' && p.ip !== 'manual' ? p.ip : `${ipFor(g.vmid)}/24`;
      out.push({
        name: p.name ?? `eth${m[1]}`,
        hwaddr: (p.hwaddr ?? macFor(g.vmid)).toLowerCase(),
        inet: ip,
        inet6: 'fe80::1/64',
      });
    }
    return out;
  });
  r.on('GET', '/nodes/{node}/lxc/{vmid}/migrate', (ctx) => {
    const g = guestOf(ctx, 'lxc');
    const others = [...ctx.state.nodes.values()].filter((n) => n.name !== g.node);
    // The container API spells these keys with dashes, unlike the VM API.
    return {
      running: g.status === 'running' ? 1 : 0,
      'allowed-nodes': others.filter((n) => n.online).map((n) => n.name),
      'not-allowed-nodes': Object.fromEntries(others.filter((n) => !n.online).map((n) => [n.name, {}])),
    };
  });
}
