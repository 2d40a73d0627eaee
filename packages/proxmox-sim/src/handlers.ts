import { randomBytes } from 'node:crypto';
import { capabilities } from './auth.js';
import { type Ctx, Envelope, type Handler } from './context.js';
import { newGuest } from './seed.js';
import {
  type ConfigValue,
  fail,
  formatSize,
  type Guest,
  type GuestType,
  ipFor,
  isDiskKey,
  macFor,
  PveError,
  parseSize,
  type SimState,
  type Task,
} from './state.js';
import { formatPropertyString, parsePropertyString } from './validate.js';

/** Every modelled operation, keyed `METHOD /path/template`. */
export const handlers = new Map<string, Handler>();

const on = (method: string, template: string, h: Handler) => handlers.set(`${method} ${template}`, h);
const both = (method: string, suffix: string, h: (ctx: Ctx, type: GuestType) => unknown) => {
  on(method, `/nodes/{node}/qemu/{vmid}${suffix}`, (ctx) => h(ctx, 'qemu'));
  on(method, `/nodes/{node}/lxc/{vmid}${suffix}`, (ctx) => h(ctx, 'lxc'));
};

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const VERSION = { version: '9.1.3', release: '9.1', repoid: 'a1b2c3d4e5f60718', console: 'html5' as const };

const guestOf = (ctx: Ctx, type: GuestType): Guest => ctx.state.guest(ctx.str('node'), ctx.int('vmid'), type);
const label = (g: Guest) => (g.type === 'qemu' ? 'VM' : 'CT');
const taskPrefix = (g: Guest) => (g.type === 'qemu' ? 'qm' : 'vz');

function checkLock(ctx: Ctx, g: Guest): void {
  const lock = g.config.lock;
  if (lock !== undefined && !ctx.bool('skiplock')) fail(`${label(g)} is locked (${lock})`);
}

function memoryMiB(g: Guest): number {
  const m = g.config.memory;
  if (m === undefined) return g.type === 'qemu' ? 512 : 512;
  if (typeof m === 'number') return m;
  return Number(parsePropertyString(m, 'current').current ?? 512);
}

function cpus(g: Guest): number {
  const cores = Number(g.config.cores ?? 1);
  return g.type === 'qemu' ? cores * Number(g.config.sockets ?? 1) : cores;
}

function agentEnabled(g: Guest): boolean {
  const a = g.config.agent;
  if (a === undefined) return false;
  const en = parsePropertyString(String(a), 'enabled').enabled ?? '0';
  return /^(1|true|yes|on)$/i.test(en);
}

function maxdisk(state: SimState, g: Guest): number {
  let total = 0;
  for (const d of state.diskEntries(g)) {
    if (/^unused/.test(d.key)) continue;
    total += d.props.size ? parseSize(d.props.size) : (state.findVolume(g.node, d.volid)?.size ?? 0);
  }
  return total;
}

function isTemplate(g: Guest): boolean {
  return Number(g.config.template ?? 0) === 1;
}

function guestStatus(state: SimState, g: Guest, full = true): Record<string, unknown> {
  const online = state.nodes.get(g.node)?.online !== false;
  const running = g.status === 'running';
  const maxmem = memoryMiB(g) * MiB;
  const s: Record<string, unknown> = {
    vmid: g.vmid,
    name: String(g.config.name ?? g.config.hostname ?? ''),
    status: online ? g.status : 'unknown',
    uptime: running ? Math.max(0, state.nowS() - g.startedAt) : 0,
    cpus: cpus(g),
    cpu: running ? (g.vmid % 10) / 100 : 0,
    maxmem,
    mem: running ? Math.floor(maxmem * 0.4) : 0,
    maxdisk: maxdisk(state, g),
    disk: 0,
    netin: running ? g.vmid * 1000 : 0,
    netout: running ? g.vmid * 500 : 0,
    diskread: running ? g.vmid * 4096 : 0,
    diskwrite: running ? g.vmid * 2048 : 0,
  };
  if (g.type === 'lxc') {
    s.type = 'lxc';
    s.maxswap = Number(g.config.swap ?? 512) * MiB;
    s.swap = 0;
  }
  if (running) s.pid = 10000 + g.vmid;
  if (isTemplate(g)) s.template = 1;
  if (g.config.lock !== undefined) s.lock = String(g.config.lock);
  if (g.config.tags !== undefined) s.tags = String(g.config.tags);
  if (full && g.type === 'qemu') {
    s.qmpstatus = online ? g.qmpstatus : 'unknown';
    if (agentEnabled(g)) s.agent = 1;
    s.ha = { managed: 0 };
    if (running) {
      s['running-machine'] = 'pc-i440fx-9.2+pve1';
      s['running-qemu'] = '9.2.0';
    }
    s.serial = 0;
  }
  return s;
}

/** Config as PVE answers it: booleans as 1/0, secrets masked, plus the digest. */
function configAnswer(state: SimState, _g: Guest, config: Record<string, ConfigValue>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if (out.cipassword !== undefined) out.cipassword = '**********';
  out.digest = state.digest(config);
  return out;
}

function toConfigValue(v: unknown): ConfigValue {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

const NOT_CONFIG = new Set([
  'node',
  'vmid',
  'delete',
  'digest',
  'skiplock',
  'background_delay',
  'revert',
  'force',
  'start',
  'pool',
  'archive',
  'storage',
  'unique',
  'live-restore',
  'bwlimit',
  'import-working-storage',
  'ostemplate',
  'password',
  'ssh-public-keys',
  'restore',
  'ignore-unpack-errors',
  'ha-managed',
]);

function nextUnused(g: Guest): string {
  let i = 0;
  while (g.config[`unused${i}`] !== undefined) i++;
  return `unused${i}`;
}

/** Applies a config update (PUT or POST): sets, allocations, deletions; checks digest and lock. */
function applyConfig(ctx: Ctx, g: Guest): void {
  checkLock(ctx, g);
  const digest = ctx.optStr('digest');
  if (digest !== undefined && digest !== ctx.state.digest(g.config))
    fail('detected modified configuration - file changed by other user? Try again.');
  const state = ctx.state;
  for (const [key, value] of Object.entries(ctx.params)) {
    if (NOT_CONFIG.has(key)) continue;
    let v = toConfigValue(value);
    if (isDiskKey(g.type, key) && typeof v === 'string') {
      const prev = g.config[key];
      v = state.allocateDiskSpec(g, key, v);
      if (prev !== undefined && !/^unused/.test(key)) {
        const dk = g.type === 'qemu' ? 'file' : 'volume';
        const oldVol = parsePropertyString(String(prev), dk)[dk];
        const newVol = parsePropertyString(v, dk)[dk];
        if (oldVol && oldVol !== newVol && state.findVolume(g.node, oldVol)) g.config[nextUnused(g)] = oldVol;
      }
    }
    g.config[key] = v;
  }
  const del = ctx.optStr('delete');
  if (del) {
    for (const key of del.split(/[,;\s]+/).filter((k) => k !== '')) {
      const prev = g.config[key];
      if (prev === undefined) continue;
      delete g.config[key];
      if (isDiskKey(g.type, key)) {
        const dk = g.type === 'qemu' ? 'file' : 'volume';
        const vol = parsePropertyString(String(prev), dk)[dk] ?? '';
        if (/^unused/.test(key)) {
          const storage = vol.split(':')[0] ?? '';
          if (state.storages.has(storage)) state.volumesOf(g.node, storage).delete(vol);
        } else if (state.findVolume(g.node, vol)) g.config[nextUnused(g)] = vol;
      }
    }
  }
}

function startGuest(state: SimState, g: Guest): void {
  if (g.status === 'running') fail(`${label(g)} ${g.vmid} already running`);
  if (isTemplate(g)) fail(`you can't start a ${g.type === 'qemu' ? 'vm' : 'container'} if it's a template`);
  if (g.config.lock === 'suspended') delete g.config.lock;
  g.status = 'running';
  g.qmpstatus = 'running';
  g.startedAt = state.nowS();
}

function requireRunning(g: Guest): void {
  if (g.status !== 'running') fail(`${label(g)} ${g.vmid} not running`);
}

function stopGuest(g: Guest): void {
  g.status = 'stopped';
  g.qmpstatus = 'stopped';
  g.startedAt = 0;
}

function task(ctx: Ctx, node: string, type: string, id: string | number, run?: () => void, log?: string[]): string {
  return ctx.state.startTask(node, type, id, ctx.taskUser, run, log ? { log } : {}).upid;
}

function taskInfo(t: Task): Record<string, unknown> {
  const out: Record<string, unknown> = {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
  };
  if (t.status === 'stopped') {
    out.status = t.exitstatus;
    out.endtime = t.endtime;
  }
  return out;
}

function nodeSummary(state: SimState, name: string): Record<string, unknown> {
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

function storageStatus(state: SimState, node: string, storage: string): Record<string, unknown> {
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

// --- access ----------------------------------------------------------------------------------

on('POST', '/access/ticket', (ctx) => {
  const { auth } = ctx.env;
  let username = ctx.str('username');
  const realm = ctx.optStr('realm');
  if (!username.includes('@') && realm) username = `${username}@${realm}`;
  const password = ctx.str('password');
  const challenge = ctx.optStr('tfa-challenge');
  const denied = () => new PveError(401, 'authentication failure');
  let userid: string;
  if (challenge !== undefined) {
    const pending = auth.verifyTicket(challenge, true);
    const user = auth.users.get(username);
    if (!pending?.tfaPending || pending.userid !== username || !user?.tfa) throw denied();
    const code = password.replace(/^totp:/, '');
    if (code !== user.tfa.totp) throw denied();
    userid = username;
  } else if (password.startsWith('PVE:')) {
    const v = auth.verifyTicket(password);
    if (!v || v.userid !== username) throw denied();
    userid = v.userid;
  } else {
    const user = auth.checkPassword(username, password);
    if (!user) throw denied();
    userid = user.userid;
    const otp = ctx.optStr('otp');
    if (user.tfa && otp === undefined) {
      return { username: userid, ticket: auth.issueTicket(userid, true), NeedTFA: 1 };
    }
    if (user.tfa && otp !== user.tfa.totp) throw denied();
  }
  return {
    username: userid,
    ticket: auth.issueTicket(userid),
    CSRFPreventionToken: auth.issueCsrf(userid),
    clustername: ctx.state.clusterName,
    cap: capabilities(auth.roleOf(userid)),
  };
});

on('GET', '/access/users', (ctx) =>
  [...ctx.env.auth.users.values()].map((u) => ({
    userid: u.userid,
    enable: u.enabled === false ? 0 : 1,
    expire: 0,
    'realm-type': u.userid.split('@')[1] ?? 'pam',
    ...(u.tfa ? { 'tfa-locked-until': undefined, totp: 1 } : {}),
  })),
);

on('GET', '/access/permissions', (ctx) => {
  const admin = ctx.auth.role === 'Administrator' ? 1 : 0;
  const caps = capabilities(ctx.auth.role);
  const all: Record<string, number> = {};
  for (const group of Object.values(caps)) for (const [k, v] of Object.entries(group)) if (v || !admin) all[k] = v;
  return { '/': all };
});

// --- cluster ---------------------------------------------------------------------------------

on('GET', '/version', () => ({ ...VERSION }));
on('GET', '/nodes/{node}/version', () => ({
  version: VERSION.version,
  release: VERSION.release,
  repoid: VERSION.repoid,
}));

on('GET', '/cluster/status', (ctx) => {
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

on('GET', '/cluster/resources', (ctx) => {
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

on('GET', '/cluster/tasks', (ctx) =>
  ctx.state.taskOrder
    .slice(-500)
    .reverse()
    .map((t) => taskInfo(t)),
);

on('GET', '/cluster/nextid', (ctx) => {
  const want = ctx.optInt('vmid');
  if (want !== undefined) {
    if (ctx.state.guests.has(want))
      throw new PveError(400, 'Parameter verification failed.', { vmid: `VM ${want} already exists` });
    return String(want);
  }
  return String(ctx.state.nextVmid(100));
});

// --- pools -----------------------------------------------------------------------------------

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

function getPool(state: SimState, poolid: string) {
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

on('GET', '/pools', (ctx) => {
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
on('POST', '/pools', (ctx) => {
  const poolid = ctx.str('poolid');
  if (ctx.state.pools.has(poolid)) fail(`create pool failed: pool '${poolid}' already exists`);
  ctx.state.pools.set(poolid, { poolid, comment: ctx.optStr('comment'), members: new Set() });
  return null;
});
on('PUT', '/pools', (ctx) => updatePool(ctx, ctx.str('poolid')));
on('PUT', '/pools/{poolid}', (ctx) => updatePool(ctx, ctx.str('poolid')));
const deletePool = (ctx: Ctx) => {
  const pool = getPool(ctx.state, ctx.str('poolid'));
  if (pool.members.size > 0) fail(`delete pool failed: pool '${pool.poolid}' is not empty`);
  ctx.state.pools.delete(pool.poolid);
  return null;
};
on('DELETE', '/pools', deletePool);
on('DELETE', '/pools/{poolid}', deletePool);
on('GET', '/pools/{poolid}', (ctx) => {
  const pool = getPool(ctx.state, ctx.str('poolid'));
  const type = ctx.optStr('type');
  return {
    members: poolMembers(ctx.state, pool.poolid).filter((m) => type === undefined || m.type === type),
    ...(pool.comment !== undefined ? { comment: pool.comment } : {}),
  };
});

// --- nodes -----------------------------------------------------------------------------------

on('GET', '/nodes', (ctx) =>
  [...ctx.state.nodes.keys()].map((n) => ({
    ...nodeSummary(ctx.state, n),
    ssl_fingerprint: ctx.env.certFingerprint ?? '',
  })),
);

on('GET', '/nodes/{node}/status', (ctx) => {
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

on('POST', '/nodes/{node}/status', (ctx) => {
  const n = ctx.state.node(ctx.str('node'));
  if (ctx.str('command') === 'shutdown') n.online = false;
  else n.startedAt = ctx.state.nowS();
  return null;
});

on('GET', '/nodes/{node}/config', (ctx) => {
  const n = ctx.state.node(ctx.str('node'));
  return { ...n.config, digest: ctx.state.digest(n.config) };
});
on('PUT', '/nodes/{node}/config', (ctx) => {
  const n = ctx.state.node(ctx.str('node'));
  for (const [k, v] of Object.entries(ctx.params))
    if (k !== 'node' && k !== 'digest' && k !== 'delete') n.config[k] = toConfigValue(v);
  for (const k of (ctx.optStr('delete') ?? '').split(/[,;\s]+/)) delete n.config[k];
  return null;
});

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
on('GET', '/nodes/{node}/network', (ctx) => {
  const type = ctx.optStr('type');
  return networkOf(ctx).filter(
    (i) => type === undefined || i.type === type || (type === 'any_bridge' && i.type === 'bridge'),
  );
});
on('GET', '/nodes/{node}/network/{iface}', (ctx) => {
  const i = networkOf(ctx).find((x) => x.iface === ctx.str('iface'));
  if (!i) fail(`network interface '${ctx.str('iface')}' does not exist`);
  return i;
});

// --- tasks -----------------------------------------------------------------------------------

on('GET', '/nodes/{node}/tasks', (ctx) => {
  const node = ctx.str('node');
  const vmid = ctx.optStr('vmid');
  const typefilter = ctx.optStr('typefilter');
  const userfilter = ctx.optStr('userfilter');
  const source = ctx.optStr('source') ?? 'archive';
  const errors = ctx.bool('errors');
  const since = ctx.optInt('since');
  const until = ctx.optInt('until');
  const statusfilter = ctx.optStr('statusfilter')?.split(/[,;\s]+/);
  const list = ctx.state.taskOrder
    .filter((t) => t.node === node)
    .filter((t) =>
      source === 'active' ? t.status === 'running' : source === 'archive' ? t.status === 'stopped' : true,
    )
    .filter((t) => vmid === undefined || t.id === vmid)
    .filter((t) => typefilter === undefined || t.type === typefilter)
    .filter((t) => userfilter === undefined || t.user.includes(userfilter))
    .filter((t) => !errors || (t.status === 'stopped' && t.exitstatus !== 'OK'))
    .filter((t) => since === undefined || t.starttime >= since)
    .filter((t) => until === undefined || t.starttime <= until)
    .filter((t) => {
      if (!statusfilter) return true;
      const st =
        t.status === 'running'
          ? 'active'
          : t.exitstatus === 'OK'
            ? 'ok'
            : /^WARNINGS/.test(t.exitstatus ?? '')
              ? 'warning'
              : 'error';
      return statusfilter.includes(st);
    })
    .reverse();
  const start = ctx.optInt('start') ?? 0;
  const limit = ctx.optInt('limit') ?? 50;
  return new Envelope(
    list.slice(start, start + limit).map((t) => taskInfo(t)),
    { total: list.length },
  );
});

function taskOn(ctx: Ctx): Task {
  const t = ctx.state.tasks.get(ctx.str('upid'));
  if (!t || t.node !== ctx.str('node')) {
    if (!/^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:[^:]*:[^:]*:[^:]+:$/.test(ctx.str('upid')))
      fail(`unable to parse worker upid '${ctx.str('upid')}'`, 400);
    return fail('no such task', 500);
  }
  return t;
}

on('GET', '/nodes/{node}/tasks/{upid}/status', (ctx) => {
  const t = taskOn(ctx);
  return {
    ...taskInfo(t),
    status: t.status,
    ...(t.status === 'stopped' ? { exitstatus: t.exitstatus } : {}),
  };
});
on('GET', '/nodes/{node}/tasks/{upid}/log', (ctx) => {
  const t = taskOn(ctx);
  const start = ctx.optInt('start') ?? 0;
  const limit = ctx.optInt('limit') ?? 50;
  const lines = t.log.length > 0 ? t.log : ['no content'];
  const page = lines
    .slice(start, limit === 0 ? undefined : start + limit)
    .map((text, i) => ({ n: start + i + 1, t: text }));
  return new Envelope(page, { total: lines.length });
});
on('DELETE', '/nodes/{node}/tasks/{upid}', (ctx) => {
  const t = taskOn(ctx);
  ctx.state.finishTask(t, 'interrupted by signal');
  return null;
});

// --- storage ---------------------------------------------------------------------------------

on('GET', '/nodes/{node}/storage', (ctx) => {
  const node = ctx.str('node');
  const content = ctx.optStr('content')?.split(/[,;\s]+/);
  const only = ctx.optStr('storage');
  return [...ctx.state.storages.values()]
    .filter((d) => only === undefined || d.storage === only)
    .filter((d) => !content || content.some((c) => d.content.includes(c)))
    .map((d) => storageStatus(ctx.state, node, d.storage));
});
on('GET', '/nodes/{node}/storage/{storage}/status', (ctx) => {
  const s = storageStatus(ctx.state, ctx.str('node'), ctx.str('storage'));
  delete s.storage;
  return s;
});

on('GET', '/nodes/{node}/storage/{storage}/content', (ctx) => {
  const state = ctx.state;
  const storage = ctx.str('storage');
  state.storage(storage);
  const content = ctx.optStr('content');
  const vmid = ctx.optInt('vmid');
  return [...state.volumesOf(ctx.str('node'), storage).values()]
    .filter((v) => content === undefined || v.content === content)
    .filter((v) => vmid === undefined || v.vmid === vmid)
    .map((v) => ({
      volid: v.volid,
      content: v.content,
      format: v.format,
      size: v.size,
      ctime: v.ctime,
      ...(v.vmid !== undefined ? { vmid: v.vmid, used: 0 } : {}),
      ...(v.notes !== undefined ? { notes: v.notes } : {}),
    }));
});

on('POST', '/nodes/{node}/storage/{storage}/content', (ctx) => {
  const state = ctx.state;
  const storage = ctx.str('storage');
  const def = state.storage(storage);
  const vmid = ctx.int('vmid');
  const filename = ctx.str('filename');
  const size = parseSize(ctx.str('size').replace(/^(\d+)$/, '$1K'));
  const format = ctx.optStr('format') ?? (filename.split('.').pop() === 'qcow2' ? 'qcow2' : 'raw');
  const volid = def.type === 'lvmthin' ? `${storage}:${filename}` : `${storage}:${vmid}/${filename}`;
  const vols = state.volumesOf(ctx.str('node'), storage);
  if (vols.has(volid)) fail(`volume '${volid}' already exists`);
  vols.set(volid, { volid, format, size, content: 'images', ctime: state.nowS(), vmid });
  return volid;
});

function volumeOf(ctx: Ctx) {
  const storage = ctx.str('storage');
  ctx.state.storage(storage);
  let volid = ctx.str('volume');
  if (!volid.includes(':')) volid = `${storage}:${volid}`;
  const v = ctx.state.volumesOf(ctx.str('node'), storage).get(volid);
  if (!v) return fail(`volume '${volid}' does not exist`);
  return v;
}
on('GET', '/nodes/{node}/storage/{storage}/content/{volume}', (ctx) => {
  const v = volumeOf(ctx);
  const def = ctx.state.storage(ctx.str('storage'));
  return {
    path: `${def.path ?? '/dev'}/${v.volid.split(':')[1]}`,
    size: v.size,
    used: v.size,
    format: v.format,
    ...(v.notes !== undefined ? { notes: v.notes } : {}),
  };
});
on('PUT', '/nodes/{node}/storage/{storage}/content/{volume}', (ctx) => {
  const v = volumeOf(ctx);
  const notes = ctx.optStr('notes');
  if (notes !== undefined) v.notes = notes;
  return null;
});
on('DELETE', '/nodes/{node}/storage/{storage}/content/{volume}', (ctx) => {
  const v = volumeOf(ctx);
  const node = ctx.str('node');
  const storage = ctx.str('storage');
  for (const g of ctx.state.guests.values())
    if (ctx.state.diskEntries(g).some((d) => d.volid === v.volid))
      fail(`volume '${v.volid}' is in use by ${label(g)} ${g.vmid}`);
  return task(ctx, node, 'imgdel', v.volid, () => {
    ctx.state.volumesOf(node, storage).delete(v.volid);
  });
});

const CONTENT_DIRS: Record<string, string> = { iso: 'iso', vztmpl: 'vztmpl', import: 'import', backup: 'dump' };

function addVolumeTask(ctx: Ctx, type: string, content: string, filename: string, size: number): string {
  const state = ctx.state;
  const node = ctx.str('node');
  const storage = ctx.str('storage');
  const def = state.storage(storage);
  if (!def.content.includes(content)) fail(`storage '${storage}' does not support content-type '${content}'`);
  const volid = `${storage}:${CONTENT_DIRS[content] ?? content}/${filename}`;
  const format = /\.iso$/i.test(filename)
    ? 'iso'
    : /\.qcow2$/i.test(filename)
      ? 'qcow2'
      : /\.tar\.zst$/i.test(filename)
        ? 'tzst'
        : (filename.split('.').pop() ?? 'raw');
  return task(
    ctx,
    node,
    type,
    storage,
    () => {
      state.volumesOf(node, storage).set(volid, { volid, content, format, size, ctime: state.nowS() });
    },
    [
      `starting file import from: ${filename}`,
      `target node: ${node}`,
      `target file: ${def.path}/${volid.split(':')[1]}`,
      `file size is: ${size}`,
    ],
  );
}

on('POST', '/nodes/{node}/storage/{storage}/upload', (ctx) => {
  const file = ctx.files.find((f) => f.field === 'filename');
  const filename = (file?.filename ?? ctx.str('filename')).split('/').pop() ?? 'upload';
  return addVolumeTask(ctx, 'imgcopy', ctx.str('content'), filename, file?.data.length ?? 0);
});
on('POST', '/nodes/{node}/storage/{storage}/download-url', (ctx) => {
  const url = ctx.str('url');
  if (!/^(https?|ftp):\/\//.test(url)) fail(`invalid URL '${url}'`, 400);
  return addVolumeTask(ctx, 'download', ctx.str('content'), ctx.str('filename'), 512 * MiB);
});

// --- guests: lists, status, config -----------------------------------------------------------

const listGuests = (ctx: Ctx, type: GuestType) => {
  const node = ctx.str('node');
  const out: Array<Record<string, unknown>> = [];
  for (const g of ctx.state.guests.values())
    if (g.node === node && g.type === type) out.push(guestStatus(ctx.state, g, ctx.bool('full')));
  return out;
};
on('GET', '/nodes/{node}/qemu', (ctx) => listGuests(ctx, 'qemu'));
on('GET', '/nodes/{node}/lxc', (ctx) => listGuests(ctx, 'lxc'));

both('GET', '/status/current', (ctx, type) => guestStatus(ctx.state, guestOf(ctx, type)));

both('GET', '/config', (ctx, type) => {
  const g = guestOf(ctx, type);
  const snapname = ctx.optStr('snapshot');
  if (snapname !== undefined) {
    const snap = g.snapshots.get(snapname);
    if (!snap) fail(`snapshot '${snapname}' does not exist`);
    return configAnswer(ctx.state, g, snap?.config ?? {});
  }
  return configAnswer(ctx.state, g, g.config);
});
both('GET', '/pending', (ctx, type) => {
  const g = guestOf(ctx, type);
  return Object.entries(g.config).map(([key, value]) => ({ key, value: key === 'cipassword' ? '**********' : value }));
});
on('PUT', '/nodes/{node}/qemu/{vmid}/config', (ctx) => {
  applyConfig(ctx, guestOf(ctx, 'qemu'));
  return null;
});
on('PUT', '/nodes/{node}/lxc/{vmid}/config', (ctx) => {
  applyConfig(ctx, guestOf(ctx, 'lxc'));
  return null;
});
on('POST', '/nodes/{node}/qemu/{vmid}/config', (ctx) => {
  const g = guestOf(ctx, 'qemu');
  applyConfig(ctx, g);
  return task(ctx, g.node, 'qmconfig', g.vmid, undefined, [
    `update VM ${g.vmid}: ${Object.keys(ctx.params).join(' ')}`,
  ]);
});

// --- guests: create / delete -----------------------------------------------------------------

function createGuest(ctx: Ctx, type: GuestType): string {
  const state = ctx.state;
  const node = ctx.str('node');
  const vmid = ctx.int('vmid');
  const existing = state.guests.get(vmid);
  if (existing)
    fail(
      `unable to create ${type === 'qemu' ? 'VM' : 'CT'} ${vmid} - ${label(existing)} ${vmid} already exists on node '${existing.node}'`,
    );
  const pool = ctx.optStr('pool');
  if (pool !== undefined) getPool(state, pool);
  const config: Record<string, ConfigValue> = {};
  const g = newGuest(state, vmid, type, node, config);
  try {
    if (type === 'lxc') {
      const tmpl = ctx.optStr('ostemplate');
      if (tmpl === undefined && !ctx.has('restore')) fail('missing ostemplate', 400);
      if (tmpl !== undefined && !state.findVolume(node, tmpl)) fail(`volume '${tmpl}' does not exist`);
      config.hostname = ctx.optStr('hostname') ?? `CT${vmid}`;
      config.memory = 512;
      config.swap = 512;
      config.cores = 1;
      config.arch = 'amd64';
      config.ostype = 'debian';
      if (!ctx.has('rootfs'))
        config.rootfs = state.allocateDiskSpec(g, 'rootfs', `${ctx.optStr('storage') ?? 'local'}:4`);
    } else {
      config.meta = `creation-qemu=9.2.0,ctime=${state.nowS()}`;
      config.smbios1 = `uuid=00000000-0000-4000-8000-${String(vmid).padStart(12, '0')}`;
      config.vmgenid = `00000000-0000-4000-9000-${String(vmid).padStart(12, '0')}`;
    }
    for (const [key, value] of Object.entries(ctx.params)) {
      if (NOT_CONFIG.has(key)) continue;
      let v = toConfigValue(value);
      if (isDiskKey(type, key) && typeof v === 'string') v = state.allocateDiskSpec(g, key, v);
      if (/^net\d+$/.test(key) && typeof v === 'string') v = withMac(type, v, vmid, Number(key.slice(3)));
      config[key] = v;
    }
  } catch (e) {
    state.removeGuestVolumes(g, true);
    state.guests.delete(vmid);
    throw e;
  }
  config.lock = 'create';
  if (pool !== undefined) {
    state.pools.get(pool)?.members.add(`${type}/${vmid}`);
    g.pool = pool;
  }
  const start = ctx.bool('start');
  return task(
    ctx,
    node,
    `${type === 'qemu' ? 'qm' : 'vz'}create`,
    vmid,
    () => {
      delete g.config.lock;
      if (start) startGuest(state, g);
    },
    type === 'lxc'
      ? [`extracting archive '${ctx.optStr('ostemplate') ?? ''}'`, 'Total bytes read: 524288000 (500MiB, 250MiB/s)']
      : [],
  );
}

function withMac(type: GuestType, value: string, vmid: number, index: number): string {
  if (type === 'lxc') {
    const p = parsePropertyString(value, 'name');
    if (p.hwaddr === undefined) return `${value},hwaddr=${macFor(vmid, index)}`;
    return value;
  }
  const p = parsePropertyString(value, 'model');
  const model = p.model;
  if (model !== undefined && p.macaddr === undefined) {
    delete p.model;
    return formatPropertyString({ [model]: macFor(vmid, index), ...p });
  }
  return value;
}

on('POST', '/nodes/{node}/qemu', (ctx) => createGuest(ctx, 'qemu'));
on('POST', '/nodes/{node}/lxc', (ctx) => createGuest(ctx, 'lxc'));

both('DELETE', '', (ctx, type) => {
  const state = ctx.state;
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  if (g.status === 'running' && !(type === 'lxc' && ctx.bool('force')))
    fail(`${label(g)} ${g.vmid} is running - destroy failed`);
  if (Number(g.config.protection ?? 0) === 1) fail(`can't remove ${label(g)} ${g.vmid} - protection mode enabled`);
  const unreferenced = ctx.bool('destroy-unreferenced-disks', type === 'lxc');
  return task(
    ctx,
    g.node,
    `${taskPrefix(g)}destroy`,
    g.vmid,
    () => {
      state.removeGuestVolumes(g, unreferenced);
      if (g.pool) state.pools.get(g.pool)?.members.delete(`${g.type}/${g.vmid}`);
      state.guests.delete(g.vmid);
    },
    [`destroying ${label(g)} ${g.vmid}`],
  );
});

// --- guests: power ---------------------------------------------------------------------------

function powerTask(name: string, action: (ctx: Ctx, g: Guest) => void) {
  return (ctx: Ctx, type: GuestType) => {
    const g = guestOf(ctx, type);
    // A VM suspended to disk is resumed by starting it, as in PVE.
    if (!(name === 'start' && g.config.lock === 'suspended')) checkLock(ctx, g);
    return task(ctx, g.node, `${taskPrefix(g)}${name}`, g.vmid, () => action(ctx, g));
  };
}

both(
  'POST',
  '/status/start',
  powerTask('start', (ctx, g) => startGuest(ctx.state, g)),
);
both(
  'POST',
  '/status/stop',
  powerTask('stop', (_ctx, g) => stopGuest(g)),
);
both(
  'POST',
  '/status/shutdown',
  powerTask('shutdown', (_ctx, g) => {
    requireRunning(g);
    stopGuest(g);
  }),
);
both(
  'POST',
  '/status/reboot',
  powerTask('reboot', (ctx, g) => {
    requireRunning(g);
    g.qmpstatus = 'running';
    g.startedAt = ctx.state.nowS();
  }),
);
on('POST', '/nodes/{node}/qemu/{vmid}/status/reset', (ctx) =>
  powerTask('reset', (c, g) => {
    requireRunning(g);
    g.startedAt = c.state.nowS();
  })(ctx, 'qemu'),
);
both('POST', '/status/suspend', (ctx, type) => {
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  const todisk = ctx.bool('todisk');
  const storage = ctx.optStr('statestorage');
  return task(ctx, g.node, `${taskPrefix(g)}suspend`, g.vmid, () => {
    requireRunning(g);
    if (todisk) {
      const vol = ctx.state.allocDisk(g.node, storage ?? 'local', g.vmid, memoryMiB(g) * MiB);
      g.config.vmstate = vol;
      g.config.lock = 'suspended';
      stopGuest(g);
    } else g.qmpstatus = 'paused';
  });
});
both('POST', '/status/resume', (ctx, type) => {
  const g = guestOf(ctx, type);
  return task(ctx, g.node, `${taskPrefix(g)}resume`, g.vmid, () => {
    if (g.config.lock === 'suspended') {
      // Resuming from disk is a start that restores the state.
      delete g.config.lock;
      const vol = String(g.config.vmstate ?? '');
      delete g.config.vmstate;
      const storage = vol.split(':')[0] ?? '';
      if (ctx.state.storages.has(storage)) ctx.state.volumesOf(g.node, storage).delete(vol);
      startGuest(ctx.state, g);
      return;
    }
    requireRunning(g);
    g.qmpstatus = 'running';
  });
});

// --- guests: template, resize, snapshots -----------------------------------------------------

both('POST', '/template', (ctx, type) => {
  const state = ctx.state;
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  if (g.status === 'running')
    fail(
      `you can't convert a ${type === 'qemu' ? 'VM' : 'CT'} to template if ${type === 'qemu' ? 'VM' : 'CT'} is running`,
    );
  if (isTemplate(g)) fail(`${label(g)} ${g.vmid} is already a template`);
  return task(ctx, g.node, `${taskPrefix(g)}template`, g.vmid, () => {
    const dk = g.type === 'qemu' ? 'file' : 'volume';
    for (const d of state.diskEntries(g)) {
      if (!d.volid.includes('/vm-') && !/:vm-/.test(d.volid)) continue;
      const storage = d.volid.split(':')[0] ?? '';
      const vols = state.volumesOf(g.node, storage);
      const vol = vols.get(d.volid);
      const renamed = d.volid.replace(/(^|[/:])vm-/, '$1base-');
      if (vol) {
        vols.delete(d.volid);
        vols.set(renamed, { ...vol, volid: renamed });
      }
      g.config[d.key] = formatPropertyString({ ...d.props, [dk]: renamed }, dk);
    }
    g.config.template = 1;
  });
});

both('PUT', '/resize', (ctx, type) => {
  const state = ctx.state;
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  const disk = ctx.str('disk');
  const value = g.config[disk];
  if (value === undefined || !isDiskKey(type, disk)) fail(`no such disk '${disk}'`);
  const dk = type === 'qemu' ? 'file' : 'volume';
  const props = parsePropertyString(String(value), dk);
  const vol = state.findVolume(g.node, props[dk] ?? '');
  const current = props.size ? parseSize(props.size) : (vol?.size ?? 0);
  const spec = ctx.str('size');
  const m = /^(\+)?(\d+(?:\.\d+)?[KMGT]?)$/i.exec(spec);
  if (!m) return fail(`invalid size '${spec}'`, 400);
  const delta = parseSize(m[2] as string);
  const next = m[1] ? current + delta : delta;
  if (next < current) fail(`shrinking disks is not supported`);
  return task(ctx, g.node, 'resize', g.vmid, () => {
    props.size = formatSize(next);
    g.config[disk] = formatPropertyString(props, dk);
    if (vol) vol.size = next;
  });
});

both('GET', '/snapshot', (ctx, type) => {
  const g = guestOf(ctx, type);
  const list: Array<Record<string, unknown>> = [...g.snapshots.values()]
    .sort((a, b) => a.snaptime - b.snaptime)
    .map((s) => ({
      name: s.name,
      description: s.description,
      snaptime: s.snaptime,
      ...(s.vmstate ? { vmstate: 1 } : {}),
      ...(s.parent !== undefined ? { parent: s.parent } : {}),
    }));
  list.push({
    name: 'current',
    description: 'You are here!',
    digest: ctx.state.digest(g.config),
    running: g.status === 'running' ? 1 : 0,
    ...(g.parent !== undefined ? { parent: g.parent } : {}),
  });
  return list;
});
both('POST', '/snapshot', (ctx, type) => {
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  const name = ctx.str('snapname');
  if (name === 'current' || name === 'vzdump') fail(`invalid snapshot name '${name}'`);
  if (g.snapshots.has(name)) fail(`snapshot name '${name}' already used`);
  const vmstate = type === 'qemu' && ctx.bool('vmstate');
  const description = ctx.optStr('description') ?? '';
  g.config.lock = 'snapshot';
  return task(
    ctx,
    g.node,
    `${taskPrefix(g)}snapshot`,
    g.vmid,
    () => {
      delete g.config.lock;
      const config = { ...g.config };
      g.snapshots.set(name, {
        name,
        description,
        snaptime: ctx.state.nowS(),
        vmstate: vmstate && g.status === 'running',
        parent: g.parent,
        config,
        running: g.status === 'running',
      });
      g.parent = name;
    },
    [`snapshotting '${name}'`],
  );
});

function snapOf(ctx: Ctx, g: Guest) {
  const name = ctx.str('snapname');
  const s = g.snapshots.get(name);
  if (!s) return fail(`snapshot '${name}' does not exist`);
  return s;
}

both('DELETE', '/snapshot/{snapname}', (ctx, type) => {
  const g = guestOf(ctx, type);
  if (!ctx.bool('force')) checkLock(ctx, g);
  const s = snapOf(ctx, g);
  return task(ctx, g.node, `${taskPrefix(g)}delsnapshot`, g.vmid, () => {
    for (const other of g.snapshots.values()) if (other.parent === s.name) other.parent = s.parent;
    if (g.parent === s.name) g.parent = s.parent;
    g.snapshots.delete(s.name);
  });
});
both('GET', '/snapshot/{snapname}/config', (ctx, type) => {
  const g = guestOf(ctx, type);
  return configAnswer(ctx.state, g, snapOf(ctx, g).config);
});
both('PUT', '/snapshot/{snapname}/config', (ctx, type) => {
  const g = guestOf(ctx, type);
  const s = snapOf(ctx, g);
  const d = ctx.optStr('description');
  if (d !== undefined) s.description = d;
  return null;
});
both('POST', '/snapshot/{snapname}/rollback', (ctx, type) => {
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  const s = snapOf(ctx, g);
  const start = ctx.bool('start');
  return task(ctx, g.node, `${taskPrefix(g)}rollback`, g.vmid, () => {
    g.config = { ...s.config };
    delete g.config.lock;
    g.parent = s.name;
    if (s.vmstate || start) {
      g.status = 'running';
      g.qmpstatus = 'running';
      g.startedAt = ctx.state.nowS();
    } else stopGuest(g);
  });
});

// --- guests: clone and migrate ---------------------------------------------------------------

function targetNode(state: SimState, target: string) {
  const n = state.nodes.get(target);
  if (!n) return fail(`no such cluster node '${target}'`);
  if (!n.online) fail(`target node '${target}' is not online`);
  return n;
}

both('POST', '/clone', (ctx, type) => {
  const state = ctx.state;
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  const newid = ctx.int('newid');
  if (state.guests.has(newid)) fail(`unable to create ${label(g)} ${newid}: config file already exists`);
  const target = ctx.optStr('target') ?? g.node;
  targetNode(state, target);
  const template = isTemplate(g);
  const full = ctx.bool('full', !template);
  if (!full && !template) fail('linked clone is only possible from a template');
  const storage = ctx.optStr('storage');
  if (storage !== undefined) state.storage(storage);
  if (target !== g.node) {
    const local = state.localDisks(g);
    if (local.length > 0 && (!full || storage === undefined || !state.storage(storage).shared))
      fail(`can't clone ${label(g)} to node '${target}' (${label(g)} uses local storage)`);
  }
  const snapname = ctx.optStr('snapname');
  const source =
    snapname !== undefined
      ? (g.snapshots.get(snapname)?.config ?? fail(`snapshot '${snapname}' does not exist`))
      : g.config;
  const pool = ctx.optStr('pool');
  if (pool !== undefined) getPool(state, pool);
  const name = ctx.optStr(type === 'qemu' ? 'name' : 'hostname');
  const description = ctx.optStr('description');
  // The new guest exists (locked) from the start, as in PVE.
  const config: Record<string, ConfigValue> = { ...source, lock: 'clone' };
  delete config.template;
  const clone = newGuest(state, newid, type, target, config);
  if (!template) g.config.lock = 'clone';
  return task(
    ctx,
    g.node,
    `${taskPrefix(g)}clone`,
    g.vmid,
    () => {
      if (!template) delete g.config.lock;
      const dk = type === 'qemu' ? 'file' : 'volume';
      for (const d of state.diskEntries({ ...g, config: source })) {
        if (/^unused/.test(d.key)) {
          delete clone.config[d.key];
          continue;
        }
        const srcStorage = d.volid.split(':')[0] ?? '';
        const size = d.props.size ? parseSize(d.props.size) : (state.findVolume(g.node, d.volid)?.size ?? GiB);
        let volid: string;
        if (full) {
          volid = state.allocDisk(target, storage ?? srcStorage, newid, size, {
            ...(ctx.optStr('format') ? { format: ctx.optStr('format') as string } : {}),
            content: type === 'qemu' ? 'images' : 'rootdir',
          });
        } else {
          volid = `${srcStorage}:${g.vmid}/${d.volid.split('/').pop()}/${newid}/vm-${newid}-disk-${d.key.replace(/\D/g, '') || '0'}.qcow2`;
          state.volumesOf(target, srcStorage).set(volid, {
            volid,
            format: 'qcow2',
            size,
            content: type === 'qemu' ? 'images' : 'rootdir',
            ctime: state.nowS(),
            vmid: newid,
          });
        }
        clone.config[d.key] = formatPropertyString({ ...d.props, [dk]: volid }, dk);
      }
      for (const key of Object.keys(clone.config)) {
        if (/^net\d+$/.test(key)) {
          const p = parsePropertyString(String(clone.config[key]), type === 'qemu' ? 'model' : 'name');
          if (type === 'qemu') {
            // `virtio=MAC,...` or `model=virtio,macaddr=MAC,...`: give the copy its own MAC.
            const mac = macFor(newid, Number(key.slice(3)));
            const parts = String(clone.config[key])
              .split(',')
              .map((part) => part.replace(/^([\w-]+)=([0-9A-F]{2}(?::[0-9A-F]{2}){5})$/i, `$1=${mac}`));
            clone.config[key] = parts.join(',');
          } else {
            p.hwaddr = macFor(newid, Number(key.slice(3)));
            clone.config[key] = formatPropertyString(p, 'name');
          }
        }
      }
      if (type === 'qemu') clone.config.name = name ?? `Copy-of-VM-${g.config.name ?? g.vmid}`;
      else clone.config.hostname = name ?? `Copy-of-CT-${g.config.hostname ?? g.vmid}`;
      if (description !== undefined) clone.config.description = description;
      delete clone.config.lock;
      if (pool !== undefined) {
        state.pools.get(pool)?.members.add(`${type}/${newid}`);
        clone.pool = pool;
      }
    },
    [`create ${full ? 'full' : 'linked'} clone of drive(s)`],
  );
});

on('GET', '/nodes/{node}/qemu/{vmid}/migrate', (ctx) => {
  const g = guestOf(ctx, 'qemu');
  const others = [...ctx.state.nodes.values()].filter((n) => n.name !== g.node);
  const local = ctx.state.localDisks(g);
  return {
    running: g.status === 'running' ? 1 : 0,
    allowed_nodes: others.filter((n) => n.online).map((n) => n.name),
    not_allowed_nodes: Object.fromEntries(
      others.filter((n) => !n.online).map((n) => [n.name, { unavailable_storages: [] }]),
    ),
    local_disks: local.map((volid) => ({ volid, size: ctx.state.findVolume(g.node, volid)?.size ?? 0, is_unused: 0 })),
    local_resources: [],
    'mapped-resources': [],
    'mapped-resource-info': {},
  };
});
on('GET', '/nodes/{node}/lxc/{vmid}/migrate', (ctx) => {
  const g = guestOf(ctx, 'lxc');
  const others = [...ctx.state.nodes.values()].filter((n) => n.name !== g.node);
  // The container API spells these keys with dashes, unlike the VM API.
  return {
    running: g.status === 'running' ? 1 : 0,
    'allowed-nodes': others.filter((n) => n.online).map((n) => n.name),
    'not-allowed-nodes': Object.fromEntries(others.filter((n) => !n.online).map((n) => [n.name, {}])),
  };
});

both('POST', '/migrate', (ctx, type) => {
  const state = ctx.state;
  const g = guestOf(ctx, type);
  checkLock(ctx, g);
  const target = ctx.str('target');
  if (target === g.node) fail('target is local node.');
  targetNode(state, target);
  const running = g.status === 'running';
  if (type === 'qemu') {
    if (running && !ctx.bool('online')) fail(`can't migrate running VM without --online`);
    if (running && state.localDisks(g).length > 0 && !ctx.bool('with-local-disks'))
      fail(`can't live migrate attached local disks without with-local-disks option`);
  } else if (running && !ctx.bool('restart')) fail('lxc live migration is currently not implemented');
  const mapping = ctx.optStr(type === 'qemu' ? 'targetstorage' : 'target-storage');
  const map = (storage: string): string => {
    if (!mapping) return storage;
    let fallback: string | undefined;
    for (const pair of mapping.split(/[,;\s]+/)) {
      const [a, b] = pair.split(':');
      if (b === undefined) fallback = a;
      else if (a === storage) return b;
    }
    return fallback ?? storage;
  };
  if (mapping) for (const s of mapping.split(/[,;\s]+/).flatMap((p) => p.split(':'))) if (s !== '1') state.storage(s);
  const source = g.node;
  g.config.lock = 'migrate';
  return task(
    ctx,
    source,
    type === 'qemu' ? 'qmigrate' : 'vzmigrate',
    g.vmid,
    () => {
      delete g.config.lock;
      state.moveLocalVolumes(g, target, map);
      g.node = target;
      if (type === 'lxc' && running) g.startedAt = state.nowS();
    },
    [
      `starting migration of ${label(g)} ${g.vmid} to node '${target}' (${state.nodes.get(target)?.ip})`,
      ...(running && type === 'qemu' ? ['starting online/live migration', 'migration status: completed'] : []),
      'migration finished successfully (duration 00:00:01)',
    ],
  );
});

// --- cloud-init ------------------------------------------------------------------------------

on('GET', '/nodes/{node}/qemu/{vmid}/cloudinit', (ctx) => {
  const g = guestOf(ctx, 'qemu');
  return Object.entries(g.config)
    .filter(([k]) => /^(ciuser|cipassword|sshkeys|ipconfig\d+|nameserver|searchdomain|citype|ciupgrade)$/.test(k))
    .map(([key, value]) => ({ key, value: key === 'cipassword' ? '**********' : value }));
});
on('PUT', '/nodes/{node}/qemu/{vmid}/cloudinit', () => null);
on('GET', '/nodes/{node}/qemu/{vmid}/cloudinit/dump', (ctx) => {
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
    if (c.nameserver !== undefined) lines.push('    - type: nameserver', '      address:', `      - '${c.nameserver}'`);
    return `${lines.join('\n')}\n`;
  }
  return `instance-id: ${ctx.state.digest(c)}\n`;
});

// --- guest agent -----------------------------------------------------------------------------

function agentGuest(ctx: Ctx, command: string): Guest {
  const g = guestOf(ctx, 'qemu');
  if (!agentEnabled(g)) fail('No QEMU guest agent configured');
  if (g.status !== 'running') fail(`VM ${g.vmid} is not running`);
  if (g.qmpstatus === 'paused') fail(`VM ${g.vmid} qmp command '${command}' failed - got timeout`);
  return g;
}

const agentPath = (cmd: string) => `/nodes/{node}/qemu/{vmid}/agent/${cmd}`;

on('POST', agentPath('ping'), (ctx) => {
  agentGuest(ctx, 'guest-ping');
  return { result: {} };
});
on('GET', agentPath('info'), (ctx) => {
  agentGuest(ctx, 'guest-info');
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
on('GET', agentPath('get-host-name'), (ctx) => {
  const g = agentGuest(ctx, 'guest-get-host-name');
  return { result: { 'host-name': String(g.config.name ?? `vm${g.vmid}`) } };
});
on('GET', agentPath('get-osinfo'), (ctx) => {
  agentGuest(ctx, 'guest-get-osinfo');
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
on('GET', agentPath('network-get-interfaces'), (ctx) => {
  const g = agentGuest(ctx, 'guest-network-get-interfaces');
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
on('GET', agentPath('get-fsinfo'), (ctx) => {
  const g = agentGuest(ctx, 'guest-get-fsinfo');
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

function builtinExec(
  g: Guest,
  argv: string[],
  input: string | undefined,
): { exitcode: number; out: string; err: string; ms: number } {
  const [cmd = '', ...args] = argv;
  const base = cmd.split('/').pop() ?? cmd;
  const ok = (out: string, exitcode = 0, err = '', ms = 0) => ({ exitcode, out, err, ms });
  switch (base) {
    case 'echo':
      return args[0] === '-n' ? ok(args.slice(1).join(' ')) : ok(`${args.join(' ')}\n`);
    case 'printf':
      return ok((args[0] ?? '').replace(/\\n/g, '\n'));
    case 'cat': {
      if (args.length === 0) return ok(input ?? '');
      let out = '';
      for (const f of args) {
        const c = g.files.get(f);
        if (c === undefined) return ok(out, 1, `cat: ${f}: No such file or directory\n`);
        out += c;
      }
      return ok(out);
    }
    case 'true':
      return ok('');
    case 'false':
      return ok('', 1);
    case 'hostname':
      return ok(`${g.config.name ?? `vm${g.vmid}`}\n`);
    case 'whoami':
      return ok('root\n');
    case 'uname':
      return ok(
        args.includes('-a')
          ? `Linux ${g.config.name ?? 'vm'} 6.1.0-25-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3 x86_64 GNU/Linux\n`
          : 'Linux\n',
      );
    case 'sleep':
      return ok('', 0, '', Math.max(0, Number(args[0] ?? 0) * 1000));
    case 'exit':
      return ok('', Number(args[0] ?? 0));
    case 'sh':
    case 'bash': {
      if (args[0] !== '-c') return ok(input ?? '', 0);
      let out = '';
      let err = '';
      let code = 0;
      let ms = 0;
      for (const part of (args[1] ?? '').split(/\s*(?:;|&&)\s*/)) {
        if (part.trim() === '') continue;
        const toErr = />&2\s*$/.test(part);
        const words =
          part
            .replace(/>&2\s*$/, '')
            .trim()
            .match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
        const r = builtinExec(
          g,
          words.map((w) => w.replace(/^(['"])(.*)\1$/, '$2')),
          input,
        );
        if (toErr) err += r.out;
        else out += r.out;
        err += r.err;
        code = r.exitcode;
        ms += r.ms;
        if (words[0] === 'exit' || code !== 0) break;
      }
      return ok(out, code, err, ms);
    }
    default:
      return fail(
        `Agent error: Guest agent command failed, error was 'Failed to execute child process "${cmd}" (No such file or directory)'`,
      );
  }
}

on('POST', agentPath('exec'), (ctx) => {
  const g = agentGuest(ctx, 'guest-exec');
  const raw = ctx.params.command;
  const argv = (Array.isArray(raw) ? raw : [raw]).map((x) => String(x));
  const input = ctx.optStr('input-data');
  const scripted = ctx.env.agent?.({ vmid: g.vmid, node: g.node, command: argv, input });
  const r = scripted
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
on('GET', agentPath('exec-status'), (ctx) => {
  const g = agentGuest(ctx, 'guest-exec-status');
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
on('GET', agentPath('file-read'), (ctx) => {
  const g = agentGuest(ctx, 'guest-file-open');
  const file = ctx.str('file');
  const c = g.files.get(file);
  if (c === undefined) return fail(`Agent error: Failed to open file '${file}': No such file or directory`);
  return { content: c };
});
on('POST', agentPath('file-write'), (ctx) => {
  const g = agentGuest(ctx, 'guest-file-open');
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
  on('POST', agentPath(cmd), (ctx) => {
    const g = agentGuest(ctx, `guest-${cmd}`);
    if (cmd === 'shutdown') stopGuest(g);
    return { result: cmd === 'fsfreeze-status' ? 'thawed' : {} };
  });
}

on('GET', '/nodes/{node}/lxc/{vmid}/interfaces', (ctx) => {
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

// --- consoles --------------------------------------------------------------------------------

function consoleTicket(ctx: Ctx, kind: 'vnc' | 'term', node: string, path: string, taskType: string, id: string) {
  const ticket = `PVEVNC:${Math.floor(ctx.state.nowS()).toString(16).toUpperCase().padStart(8, '0')}::${randomBytes(24).toString('base64')}`;
  const t = ctx.state.newVncTicket(kind, ctx.taskUser, path, ticket);
  const upid = ctx.state.startTask(node, taskType, id, ctx.taskUser, undefined, { duration: 10_000, log: [] }).upid;
  return {
    user: ctx.taskUser,
    ticket,
    port: t.port,
    upid,
    cert: ctx.env.certPem ?? '',
  };
}

both('POST', '/vncproxy', (ctx, type) => {
  const g = guestOf(ctx, type);
  const r: Record<string, unknown> = consoleTicket(
    ctx,
    'vnc',
    g.node,
    `/nodes/${g.node}/${type}/${g.vmid}`,
    'vncproxy',
    String(g.vmid),
  );
  if (ctx.bool('generate-password'))
    r.password = randomBytes(6)
      .toString('base64')
      .replace(/[^!-~]/g, 'x');
  return r;
});
both('POST', '/termproxy', (ctx, type) => {
  const g = guestOf(ctx, type);
  const r = consoleTicket(ctx, 'term', g.node, `/nodes/${g.node}/${type}/${g.vmid}`, 'vncproxy', String(g.vmid));
  const { cert: _cert, ...rest } = r;
  return rest;
});
on('POST', '/nodes/{node}/termproxy', (ctx) => {
  const node = ctx.str('node');
  const { cert: _cert, ...rest } = consoleTicket(ctx, 'term', node, `/nodes/${node}`, 'vncshell', '');
  return rest;
});
on('POST', '/nodes/{node}/vncshell', (ctx) => {
  const node = ctx.str('node');
  const r: Record<string, unknown> = consoleTicket(ctx, 'vnc', node, `/nodes/${node}`, 'vncshell', '');
  return r;
});
