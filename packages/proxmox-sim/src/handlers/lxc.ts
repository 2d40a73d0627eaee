import { parsePropertyString } from '../property-string.js';
import { ipFor, macFor } from '../state.js';
import { applyConfig, guestOf } from './guest-model.js';
import { createGuest, listGuests } from './guests.js';
import type { Routes } from './router.js';

/** One interface as PVE 9 reports it from `ip --json a`: the addresses, and the older keys. */
function iface(name: string, mac: string, inet: string, inet6: string): Record<string, unknown> {
  const address = (cidr: string, type: string) => {
    const [ip, prefix] = cidr.split('/');
    return { 'ip-address-type': type, 'ip-address': ip, prefix: Number(prefix) };
  };
  return {
    name,
    'hardware-address': mac,
    hwaddr: mac,
    inet,
    inet6,
    'ip-addresses': [address(inet, 'inet'), address(inet6, 'inet6')],
  };
}

/** Operations only LXC containers have: their list and create, config, the migrate pre-check and interfaces. */
export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/lxc', (ctx) => listGuests(ctx, 'lxc'));

  r.on('PUT', '/nodes/{node}/lxc/{vmid}/config', (ctx) => {
    applyConfig(ctx, guestOf(ctx, 'lxc'));
    return null;
  });
  r.on('POST', '/nodes/{node}/lxc', (ctx) => createGuest(ctx, 'lxc'));

  // PVE asks `lxc-info` for the container's PID on this node and answers null (200) when there is
  // none: a stopped container, or one that is not on this node or does not exist at all.
  r.on('GET', '/nodes/{node}/lxc/{vmid}/interfaces', (ctx) => {
    const g = ctx.state.guests.get(ctx.int('vmid'));
    if (g?.type !== 'lxc' || g.node !== ctx.str('node') || g.status !== 'running') return null;
    const out = [iface('lo', '00:00:00:00:00:00', '127.0.0.1/8', '::1/128')];
    for (const [key, value] of Object.entries(g.config)) {
      const m = /^net(\d+)$/.exec(key);
      if (!m) continue;
      const p = parsePropertyString(String(value), 'name');
      const ip = p.ip && p.ip !== 'dhcp' && p.ip !== 'manual' ? p.ip : `${ipFor(g.vmid)}/24`;
      out.push(iface(p.name ?? `eth${m[1]}`, (p.hwaddr ?? macFor(g.vmid)).toLowerCase(), ip, 'fe80::1/64'));
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
