import type { Ctx } from '../context.js';
import { fail } from '../state.js';
import { GiB, toConfigValue, VERSION } from './common.js';
import type { Routes } from './router.js';
import { nodeSummary } from './summaries.js';

/** Nodes: the list, status, power commands, config and network interfaces. */

function networkOf(ctx: Ctx): Array<Record<string, unknown>> {
  const n = ctx.state.node(ctx.str('node'));
  return [
    { iface: 'lo', type: 'loopback', active: 1, autostart: 1, method: 'loopback', families: ['inet'], priority: 1 },
    {
      iface: 'eno1',
      type: 'eth',
      active: 1,
      autostart: 1,
      method: 'manual',
      families: ['inet'],
      exists: 1,
      priority: 2,
    },
    {
      iface: 'vmbr0',
      type: 'bridge',
      active: 1,
      autostart: 1,
      method: 'static',
      families: ['inet'],
      address: n.ip,
      netmask: '24',
      cidr: `${n.ip}/24`,
      gateway: '192.168.100.1',
      bridge_ports: 'eno1',
      bridge_stp: 'off',
      bridge_fd: '0',
      priority: 3,
    },
  ];
}

export function register(r: Routes): void {
  r.on('GET', '/nodes', (ctx) =>
    [...ctx.state.nodes.keys()].map((n) => ({
      ...nodeSummary(ctx.state, n),
      ssl_fingerprint: ctx.env.certFingerprint ?? '',
    })),
  );

  r.on('GET', '/nodes/{node}/status', (ctx) => {
    const s = nodeSummary(ctx.state, ctx.str('node'));
    const n = ctx.state.node(ctx.str('node'));
    const mem = Number(s.mem);
    return {
      cpu: s.cpu,
      cpuinfo: {
        cpus: n.maxcpu,
        cores: n.maxcpu / 2,
        sockets: 1,
        model: 'Simulated CPU @ 3.00GHz',
        mhz: '3000.000',
        hvm: '1',
        flags: 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov vmx',
        user_hz: 100,
      },
      memory: { total: n.maxmem, used: mem, free: n.maxmem - mem, available: n.maxmem - mem },
      swap: { total: 8 * GiB, used: 0, free: 8 * GiB },
      rootfs: { total: 100 * GiB, used: 12 * GiB, avail: 88 * GiB, free: 88 * GiB },
      ksm: { shared: 0 },
      uptime: s.uptime,
      loadavg: ['0.12', '0.10', '0.08'],
      idle: 0,
      wait: 0.001,
      kversion: 'Linux 6.14.8-2-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.8-2 x86_64',
      pveversion: `pve-manager/${VERSION.version}/${VERSION.repoid}`,
      'boot-info': { mode: 'efi', secureboot: 0 },
      'current-kernel': {
        sysname: 'Linux',
        release: '6.14.8-2-pve',
        version: '#1 SMP PREEMPT_DYNAMIC',
        machine: 'x86_64',
      },
    };
  });

  r.on('POST', '/nodes/{node}/status', (ctx) => {
    const n = ctx.state.node(ctx.str('node'));
    if (ctx.str('command') === 'shutdown') n.online = false;
    else n.startedAt = ctx.state.nowS();
    return null;
  });

  r.on('GET', '/nodes/{node}/config', (ctx) => {
    const n = ctx.state.node(ctx.str('node'));
    return { ...n.config, digest: ctx.state.digest(n.config) };
  });
  r.on('PUT', '/nodes/{node}/config', (ctx) => {
    const n = ctx.state.node(ctx.str('node'));
    for (const [k, v] of Object.entries(ctx.params))
      if (k !== 'node' && k !== 'digest' && k !== 'delete') n.config[k] = toConfigValue(v);
    for (const k of (ctx.optStr('delete') ?? '').split(/[,;\s]+/)) delete n.config[k];
    return null;
  });

  r.on('GET', '/nodes/{node}/network', (ctx) => {
    const type = ctx.optStr('type');
    return networkOf(ctx).filter(
      (i) => type === undefined || i.type === type || (type === 'any_bridge' && i.type === 'bridge'),
    );
  });
  r.on('GET', '/nodes/{node}/network/{iface}', (ctx) => {
    const i = networkOf(ctx).find((x) => x.iface === ctx.str('iface'));
    if (!i) fail(`network interface '${ctx.str('iface')}' does not exist`);
    return i;
  });
}
