import { type ConfigValue, type Guest, type GuestType, macFor, type SimState } from './state.js';

/** A guest to create at start. Everything but nothing is optional. */
export interface GuestSpec {
  vmid?: number;
  type?: GuestType;
  node?: string;
  name?: string;
  status?: 'running' | 'stopped';
  template?: boolean;
  /** Extra or overriding config keys (PVE option strings). */
  config?: Record<string, ConfigValue>;
  /**
   * Whether the guest OS answers the QEMU guest agent (default true). With false, an agent call on
   * the running VM fails as on PVE: 500 'QEMU guest agent is not running'.
   */
  agentRunning?: boolean;
  /** Files in the guest, readable through the agent's file-read. */
  files?: Record<string, string>;
  pool?: string;
}

export interface SeedOptions {
  nodes: number | Array<string | { name: string; online?: boolean }>;
  guests: number | GuestSpec[];
}

const GiB = 1024 ** 3;

export function newGuest(
  state: SimState,
  vmid: number,
  type: GuestType,
  node: string,
  config: Record<string, ConfigValue>,
): Guest {
  const g: Guest = {
    vmid,
    type,
    node,
    status: 'stopped',
    qmpstatus: 'stopped',
    config,
    snapshots: new Map(),
    startedAt: 0,
    files: new Map([
      ['/etc/hostname', `${config.name ?? config.hostname ?? `guest${vmid}`}\n`],
      [
        '/etc/os-release',
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
      ],
    ]),
    agentRunning: true,
    execs: new Map(),
    nextPid: 1000,
  };
  state.guests.set(vmid, g);
  return g;
}

export function seedState(state: SimState, options: SeedOptions): void {
  const nodeList =
    typeof options.nodes === 'number'
      ? Array.from({ length: options.nodes }, (_, i) => ({ name: `pve${i + 1}`, online: true }))
      : options.nodes.map((n) =>
          typeof n === 'string' ? { name: n, online: true } : { name: n.name, online: n.online !== false },
        );
  nodeList.forEach((n, i) => {
    state.nodes.set(n.name, {
      name: n.name,
      online: n.online !== false,
      nodeid: i + 1,
      ip: `192.168.100.${11 + i}`,
      maxcpu: 16,
      maxmem: 64 * GiB,
      startedAt: state.nowS() - 86_400 * (3 + i),
      config: {},
    });
  });
  state.storages.set('local', {
    storage: 'local',
    type: 'dir',
    content: ['images', 'rootdir', 'iso', 'vztmpl', 'backup', 'import', 'snippets'],
    shared: false,
    total: 500 * GiB,
    path: '/var/lib/vz',
  });
  state.storages.set('shared', {
    storage: 'shared',
    type: 'nfs',
    content: ['images', 'rootdir', 'iso', 'import', 'backup'],
    shared: true,
    total: 4096 * GiB,
    path: '/mnt/pve/shared',
  });
  const now = state.nowS();
  for (const n of nodeList) {
    const vols = state.volumesOf(n.name, 'local');
    const add = (volid: string, content: string, format: string, size: number) =>
      vols.set(volid, { volid, content, format, size, ctime: now - 86_400 });
    add('local:iso/debian-12.7.0-amd64-netinst.iso', 'iso', 'iso', 660 * 1024 ** 2);
    add('local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst', 'vztmpl', 'tzst', 126 * 1024 ** 2);
    add('local:import/debian-12-genericcloud-amd64.qcow2', 'import', 'qcow2', 2 * GiB);
  }
  const shared = state.volumesOf(nodeList[0]?.name ?? 'pve1', 'shared');
  shared.set('shared:import/cloud.qcow2', {
    volid: 'shared:import/cloud.qcow2',
    content: 'import',
    format: 'qcow2',
    size: 2 * GiB,
    ctime: now - 86_400,
  });

  const specs: GuestSpec[] =
    typeof options.guests === 'number'
      ? Array.from({ length: options.guests }, (_, i) => ({
          type: i % 5 === 4 ? ('lxc' as const) : ('qemu' as const),
          status: i % 2 === 0 ? ('running' as const) : ('stopped' as const),
        }))
      : options.guests;
  const names = nodeList.map((n) => n.name);
  specs.forEach((spec, i) => {
    const vmid = spec.vmid ?? state.nextVmid(100 + i);
    const type = spec.type ?? 'qemu';
    const node = spec.node ?? names[i % names.length] ?? 'pve1';
    // Every third guest keeps its disk on local storage (the rest on shared storage).
    const storage = i % 3 === 0 ? 'local' : 'shared';
    const base: Record<string, ConfigValue> = {};
    if (type === 'qemu') {
      base.name = spec.name ?? `vm${vmid}`;
      base.memory = '2048';
      base.cores = 2;
      base.sockets = 1;
      base.ostype = 'l26';
      base.scsihw = 'virtio-scsi-single';
      base.boot = 'order=scsi0;net0';
      base.net0 = `virtio=${macFor(vmid)},bridge=vmbr0,firewall=1`;
      base.agent = '1';
      base.smbios1 = `uuid=00000000-0000-4000-8000-${String(vmid).padStart(12, '0')}`;
      base.vmgenid = `00000000-0000-4000-9000-${String(vmid).padStart(12, '0')}`;
      base.meta = `creation-qemu=9.2.0,ctime=${now - 86_400 * 30}`;
    } else {
      base.hostname = spec.name ?? `ct${vmid}`;
      base.memory = 512;
      base.swap = 512;
      base.cores = 1;
      base.arch = 'amd64';
      base.ostype = 'debian';
      base.net0 = `name=eth0,bridge=vmbr0,hwaddr=${macFor(vmid)},ip=dhcp,type=veth`;
      base.unprivileged = 1;
    }
    const g = newGuest(state, vmid, type, node, base);
    if (!state.nodes.has(node)) throw new Error(`guest ${vmid}: no node ${node}`);
    const diskKey = type === 'qemu' ? 'scsi0' : 'rootfs';
    const size = type === 'qemu' ? 32 * GiB : 8 * GiB;
    const volid = state.allocDisk(node, storage, vmid, size, {
      base: spec.template === true,
      content: type === 'qemu' ? 'images' : 'rootdir',
    });
    g.config[diskKey] = type === 'qemu' ? `${volid},iothread=1,size=32G` : `${volid},size=8G`;
    Object.assign(g.config, spec.config ?? {});
    if (spec.template) g.config.template = 1;
    if (spec.agentRunning === false) g.agentRunning = false;
    for (const [p, c] of Object.entries(spec.files ?? {})) g.files.set(p, c);
    g.files.set('/etc/hostname', `${g.config.name ?? g.config.hostname}\n`);
    const running = spec.status === 'running' && !spec.template;
    if (running) {
      g.status = 'running';
      g.qmpstatus = 'running';
      g.startedAt = now - 3600 * (1 + (vmid % 48));
    }
    if (spec.pool) {
      let pool = state.pools.get(spec.pool);
      if (!pool) {
        pool = { poolid: spec.pool, members: new Set() };
        state.pools.set(spec.pool, pool);
      }
      pool.members.add(`${type}/${vmid}`);
      g.pool = spec.pool;
    }
  });
}
