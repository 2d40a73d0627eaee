import type { Ctx } from '../context.js';
import { parsePropertyString } from '../property-string.js';
import { fail, type Guest, ipFor, macFor } from '../state.js';
import { GiB } from './common.js';
import { agentEnabled, guestOf, maxdisk, stopGuest } from './guest-model.js';
import { builtinExec } from './guest-shell.js';
import type { Routes } from './router.js';

/** The QEMU guest agent: ping, info, host name, OS info, interfaces, file systems, exec (answered by
 * the scripted agent or the built-in shell of guest-shell.ts), exec-status and file read/write. */

/**
 * PVE's assert_agent_available, in its order: an `agent` key at all (PVE tests only that it is
 * there, so `agent: 0` passes), the VM running, then a guest-ping answered within 3 s, which fails
 * when the agent is disabled (QEMU has no agent channel), not running in the guest, or the VM is
 * paused.
 */
function agentGuest(ctx: Ctx): Guest {
  const g = guestOf(ctx, 'qemu');
  if (g.config.agent === undefined) fail('No QEMU guest agent configured');
  if (g.status !== 'running') fail(`VM ${g.vmid} is not running`);
  // A guest OS still booting, or an agent silenced by a fault, answers no guest-ping either.
  const silent = ctx.env.faults.guestFaults(g.vmid)?.agent === 'silent';
  if (!agentEnabled(g) || !g.agentRunning || g.qmpstatus === 'paused' || g.booting || silent)
    fail('QEMU guest agent is not running');
  return g;
}

const agentPath = (cmd: string) => `/nodes/{node}/qemu/{vmid}/agent/${cmd}`;

export function register(r: Routes): void {
  r.on('POST', agentPath('ping'), (ctx) => {
    agentGuest(ctx);
    return { result: {} };
  });
  r.on('GET', agentPath('info'), (ctx) => {
    agentGuest(ctx);
    return {
      result: {
        version: '7.2.0',
        supported_commands: [
          'guest-ping',
          'guest-exec',
          'guest-exec-status',
          'guest-file-open',
          'guest-network-get-interfaces',
          'guest-get-fsinfo',
        ].map((name) => ({ name, enabled: true, 'success-response': true })),
      },
    };
  });
  r.on('GET', agentPath('get-host-name'), (ctx) => {
    const g = agentGuest(ctx);
    return { result: { 'host-name': String(g.config.name ?? `vm${g.vmid}`) } };
  });
  r.on('GET', agentPath('get-osinfo'), (ctx) => {
    agentGuest(ctx);
    return {
      result: {
        id: 'debian',
        name: 'Debian GNU/Linux',
        'pretty-name': 'Debian GNU/Linux 12 (bookworm)',
        version: '12 (bookworm)',
        'version-id': '12',
        'kernel-release': '6.1.0-25-amd64',
        'kernel-version': '#1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3',
        machine: 'x86_64',
      },
    };
  });
  r.on('GET', agentPath('network-get-interfaces'), (ctx) => {
    const g = agentGuest(ctx);
    const ifaces: Array<Record<string, unknown>> = [
      {
        name: 'lo',
        'hardware-address': '00:00:00:00:00:00',
        'ip-addresses': [
          { 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 },
          { 'ip-address': '::1', 'ip-address-type': 'ipv6', prefix: 128 },
        ],
        statistics: {
          'rx-bytes': 0,
          'tx-bytes': 0,
          'rx-packets': 0,
          'tx-packets': 0,
          'rx-errs': 0,
          'tx-errs': 0,
          'rx-dropped': 0,
          'tx-dropped': 0,
        },
      },
    ];
    for (const [key, value] of Object.entries(g.config)) {
      const m = /^net(\d+)$/.exec(key);
      if (!m) continue;
      const idx = Number(m[1]);
      const p = parsePropertyString(String(value));
      const mac = (
        p.macaddr ??
        Object.values(p).find((v) => /^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/i.test(v)) ??
        macFor(g.vmid, idx)
      ).toLowerCase();
      const ipconf = g.config[`ipconfig${idx}`];
      const staticIp = ipconf !== undefined ? parsePropertyString(String(ipconf)).ip : undefined;
      const [ip, prefix] =
        staticIp && staticIp !== 'dhcp'
          ? staticIp.split('/')
          : [idx === 0 ? ipFor(g.vmid) : `10.${20 + idx}.${(g.vmid >> 8) & 255}.${g.vmid & 255}`, '24'];
      ifaces.push({
        name: `eth${idx}`,
        'hardware-address': mac,
        'ip-addresses': [
          { 'ip-address': ip, 'ip-address-type': 'ipv4', prefix: Number(prefix ?? 24) },
          {
            'ip-address': `fe80::be24:11ff:fe${mac.slice(9, 11)}:${mac.slice(12, 14)}${mac.slice(15, 17)}`,
            'ip-address-type': 'ipv6',
            prefix: 64,
          },
        ],
        statistics: {
          'rx-bytes': g.vmid * 1000,
          'tx-bytes': g.vmid * 500,
          'rx-packets': g.vmid,
          'tx-packets': g.vmid,
          'rx-errs': 0,
          'tx-errs': 0,
          'rx-dropped': 0,
          'tx-dropped': 0,
        },
      });
    }
    return { result: ifaces };
  });
  r.on('GET', agentPath('get-fsinfo'), (ctx) => {
    const g = agentGuest(ctx);
    const total = maxdisk(ctx.state, g) || 32 * GiB;
    return {
      result: [
        {
          name: 'sda1',
          mountpoint: '/',
          type: 'ext4',
          'total-bytes': Math.floor(total * 0.97),
          'used-bytes': Math.floor(total * 0.2),
          disk: [
            {
              'bus-type': 'scsi',
              bus: 0,
              target: 0,
              unit: 0,
              dev: '/dev/sda1',
              serial: `drive-scsi0`,
              'pci-controller': { domain: 0, bus: 1, slot: 1, function: 0 },
            },
          ],
        },
        {
          name: 'sda15',
          mountpoint: '/boot/efi',
          type: 'vfat',
          'total-bytes': 129_718_272,
          'used-bytes': 12_288,
          disk: [],
        },
      ],
    };
  });

  r.on('POST', agentPath('exec'), (ctx) => {
    const g = agentGuest(ctx);
    const raw = ctx.params.command;
    const argv = (Array.isArray(raw) ? raw : [raw]).map((x) => String(x));
    const input = ctx.optStr('input-data');
    const fault = ctx.env.faults.commandFault(g.vmid, argv.join(' '));
    const scripted = fault ? undefined : ctx.env.agent?.({ vmid: g.vmid, node: g.node, command: argv, input });
    const r = fault
      ? {
          exitcode: fault.exitcode ?? 1,
          out: fault.stdout ?? '',
          err: fault.stderr ?? '',
          ms: fault.hang ? Number.POSITIVE_INFINITY : 0,
        }
      : scripted
        ? {
            exitcode: scripted.exitcode ?? 0,
            out: scripted.stdout ?? '',
            err: scripted.stderr ?? '',
            ms: scripted.durationMs ?? 0,
          }
        : builtinExec(g, argv, input);
    const pid = ++g.nextPid;
    g.execs.set(pid, { pid, exitcode: r.exitcode, out: r.out, err: r.err, doneAt: ctx.state.now() + r.ms });
    return { pid };
  });
  r.on('GET', agentPath('exec-status'), (ctx) => {
    const g = agentGuest(ctx);
    const pid = ctx.int('pid');
    const e = g.execs.get(pid);
    if (!e) return fail(`Agent error: Invalid parameter 'pid'`);
    if (ctx.state.now() < e.doneAt) return { exited: 0 };
    return {
      exited: 1,
      exitcode: e.exitcode,
      ...(e.out !== '' ? { 'out-data': e.out } : {}),
      ...(e.err !== '' ? { 'err-data': e.err } : {}),
    };
  });
  r.on('GET', agentPath('file-read'), (ctx) => {
    const g = agentGuest(ctx);
    const file = ctx.str('file');
    const c = g.files.get(file);
    if (c === undefined) return fail(`Agent error: Failed to open file '${file}': No such file or directory`);
    return { content: c };
  });
  r.on('POST', agentPath('file-write'), (ctx) => {
    const g = agentGuest(ctx);
    const content = ctx.str('content');
    g.files.set(ctx.str('file'), ctx.bool('encode', true) ? content : Buffer.from(content, 'base64').toString('utf8'));
    return null;
  });
  for (const cmd of [
    'fsfreeze-freeze',
    'fsfreeze-thaw',
    'fsfreeze-status',
    'fstrim',
    'suspend-disk',
    'suspend-ram',
    'suspend-hybrid',
    'shutdown',
  ]) {
    r.on('POST', agentPath(cmd), (ctx) => {
      const g = agentGuest(ctx);
      if (cmd === 'shutdown') stopGuest(ctx.state, g);
      return { result: cmd === 'fsfreeze-status' ? 'thawed' : {} };
    });
  }
}
