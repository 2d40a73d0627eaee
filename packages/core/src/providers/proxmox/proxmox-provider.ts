import type { CallOptions } from '@vmplane/common';
import type { Task } from '@vmplane/proxmox';
import { UnsupportedError } from '../../errors.js';
import type { ProviderRef, ProxmoxRef } from '../../model/instance.js';
import { shellQuote } from '../../ssh/shell.js';
import type {
  Capability,
  ExecRequest,
  GuestProcess,
  GuestStats,
  InstallPlan,
  InstallSpec,
  NodeCapacity,
  ObservedGuest,
  PathInfo,
  Provider,
  UndoHandler,
  UsedResources,
} from '../provider.js';
import { parseStat, statCommand } from './guest-access.js';
import { checkGrowth, ProxmoxGuests, TIMEOUTS } from './guests.js';
import { vmInstallPlan } from './install.js';
import { containerInstallPlan } from './install-lxc.js';
import { type ProxmoxProviderOptions, resolveOptions } from './options.js';
import { backendStatus, hypemanState } from './states.js';
import { undoHandlers } from './undo.js';
import { call, guestName, isGuestMissing, parseTags, proxmoxRef, runTask } from './util.js';

/**
 * vmplane over a Proxmox VE cluster: QEMU VMs installed from cloud images (go-pve-qemu's install,
 * stage for stage) and LXC containers from templates, their lifecycle, snapshots, hibernation,
 * clones, resizing and migration, through `@vmplane/proxmox`.
 *
 * States (see STATES.md and states.ts): `status` running/stopped/paused/suspended/prelaunch/unknown,
 * the config's `lock` and QEMU's `qmpstatus` map onto hypeman's: running → Running; paused or
 * qmpstatus paused/suspended → Paused; qmpstatus shutdown → Shutdown; stopped with
 * `lock: suspended` (hibernated to disk) → Standby; stopped with `lock: create|clone` or
 * prelaunch → Created; stopped → Stopped; unknown → Unknown.
 *
 * `list()` is one `cluster/resources?type=vm` request, which core's reconcile calls every few
 * seconds; `get()` adds `status/current` and the config (for qmpstatus and the address).
 */
export class ProxmoxProvider implements Provider {
  readonly name: string;
  readonly type = 'proxmox' as const;
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>([
    'vms',
    'containers',
    'install',
    'exec',
    'files',
    'stats',
    'snapshots',
    'snapshot-restore',
    'standby',
    'fork',
    'resize-cpu',
    'resize-memory',
    'grow-disk',
    'migrate',
  ]);
  readonly undo: Readonly<Record<string, UndoHandler>>;
  /** @internal What the plans and lifecycle calls share. */
  readonly guests: ProxmoxGuests;

  constructor(opts: ProxmoxProviderOptions) {
    const o = resolveOptions(opts);
    this.name = o.name;
    this.guests = new ProxmoxGuests(o);
    this.undo = undoHandlers(this.guests);
  }

  get #pve() {
    return this.guests.pve;
  }

  async probe(opts?: CallOptions): Promise<{ reachable: boolean; version?: string; error?: string }> {
    try {
      const v = await this.#pve.cluster.version({ ...call(opts, TIMEOUTS.read), fresh: true });
      return { reachable: true, version: `pve-manager/${v.version}` };
    } catch (error) {
      return { reachable: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  async nodes(opts?: CallOptions): Promise<NodeCapacity[]> {
    const all = await this.#pve.cluster.resources({ ...call(opts, TIMEOUTS.read), type: 'node', fresh: true });
    return all
      .filter((r) => r.type === 'node')
      .map((r) => {
        const n: NodeCapacity = { name: r.node ?? r.id, online: r.status === 'online' };
        if (r.maxcpu !== undefined) n.cpus = r.maxcpu;
        if (r.cpu !== undefined) n.cpuUsage = r.cpu;
        if (r.maxmem !== undefined) n.memoryBytes = r.maxmem;
        if (r.mem !== undefined) n.memoryUsedBytes = r.mem;
        if (r.maxdisk !== undefined) n.diskBytes = r.maxdisk;
        if (r.disk !== undefined) n.diskUsedBytes = r.disk;
        return n;
      });
  }

  /** Every VM and container but templates, from one `cluster/resources?type=vm`. */
  async list(opts?: CallOptions): Promise<ObservedGuest[]> {
    const resources = await this.guests.resources(call(opts, TIMEOUTS.read));
    return resources.filter((r) => !r.template).map((r) => this.guests.observed(r));
  }

  async get(ref: ProviderRef, opts?: CallOptions): Promise<ObservedGuest | undefined> {
    const o = call(opts, TIMEOUTS.read);
    const where = await this.guests.locate(proxmoxRef(ref), o);
    if (!where) return undefined;
    const api = this.guests.api(where);
    try {
      const [status, config] = await Promise.all([api.status.current(o), api.config({ ...o, fresh: true })]);
      const qmp = typeof status.qmpstatus === 'string' ? status.qmpstatus : undefined;
      const guest: ObservedGuest = {
        ref: where,
        name: config.name ?? status.name ?? `${where.kind === 'qemu' ? 'vm' : 'ct'}${where.vmid}`,
        state: hypemanState(where.kind, status.status, status.lock, qmp),
        backendStatus: backendStatus(status.status, status.lock, qmp),
      };
      const ip = (config.ipConfigs[0]?.ip ?? config.networks[0]?.ip)?.split('/')[0];
      if (ip && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) guest.ipv4 = ip;
      const cpus = typeof status.cpus === 'number' ? status.cpus : config.cores;
      if (cpus !== undefined) guest.vcpus = cpus;
      if (status.maxmem !== undefined) guest.memoryBytes = status.maxmem;
      const tags = parseTags(config.tags.join(';'));
      if (tags) guest.tags = tags;
      return guest;
    } catch (error) {
      if (isGuestMissing(error, where.vmid)) return undefined;
      throw error;
    }
  }

  used(opts?: CallOptions): Promise<UsedResources> {
    return this.guests.used(call(opts, TIMEOUTS.read));
  }

  install(spec: InstallSpec): InstallPlan {
    return spec.kind === 'container' ? containerInstallPlan(this.guests, spec) : vmInstallPlan(this.guests, spec);
  }

  async start(ref: ProviderRef, opts?: CallOptions): Promise<void> {
    await this.#task(ref, opts, (api, o) => api.start(o));
  }

  /** `force`: `qm stop --skiplock` (at once, whatever holds the lock); otherwise an ACPI shutdown. */
  async stop(ref: ProviderRef, opts?: CallOptions & { force?: boolean }): Promise<void> {
    const force = opts?.force === true;
    await this.#task(ref, opts, (api, o, r) =>
      force ? (r.kind === 'qemu' ? api.stop({ ...o, skiplock: true }) : api.stop(o)) : api.shutdown(o),
    );
  }

  async reboot(ref: ProviderRef, opts?: CallOptions): Promise<void> {
    await this.#task(ref, opts, (api, o) => api.reboot(o));
  }

  destroy(ref: ProviderRef, opts?: CallOptions): Promise<void> {
    return this.guests.destroy(proxmoxRef(ref), call(opts, TIMEOUTS.destroy));
  }

  async waitReady(ref: ProviderRef, opts: CallOptions & { readiness?: InstallSpec['readiness'] }): Promise<void> {
    const r = proxmoxRef(ref);
    const where = (await this.guests.locate(r, { signal: opts.signal, timeout: TIMEOUTS.read })) ?? r;
    await this.guests.waitReady(where, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
      ...(opts.readiness ? { readiness: opts.readiness } : {}),
    });
  }

  exec(ref: ProviderRef, request: ExecRequest, opts?: CallOptions): Promise<GuestProcess> {
    return this.guests.onGuest(proxmoxRef(ref), call(opts, TIMEOUTS.read), (r) =>
      this.guests.exec(r, request, call(opts, TIMEOUTS.read)),
    );
  }

  /** `stat` in the guest (SSH, or the agent's exec): PVE's agent has no stat of its own. */
  async stat(ref: ProviderRef, path: string, opts?: CallOptions): Promise<PathInfo> {
    const r = proxmoxRef(ref);
    this.#noContainer(r, 'files');
    const res = await this.guests.shell(r, statCommand(path), call(opts, TIMEOUTS.read));
    return parseStat(res.exitCode, res.stdout, res.stderr);
  }

  /** The file through the agent's `file-read` (PVE caps it at 16 MiB). */
  async readFile(ref: ProviderRef, path: string, opts?: CallOptions): Promise<AsyncIterable<Uint8Array>> {
    const r = proxmoxRef(ref);
    this.#noContainer(r, 'files');
    const got = await this.guests.onGuest(r, call(opts, TIMEOUTS.read), (x) =>
      this.guests.qemu(x).agent.fileRead(path, call(opts, TIMEOUTS.read)),
    );
    // PVE hands the agent's bytes over as one character per byte (Perl's string of the decoded base64).
    const bytes = Buffer.from(got.content, 'latin1');
    return {
      async *[Symbol.asyncIterator]() {
        yield bytes;
      },
    };
  }

  /** Small files through the agent's `file-write`; larger ones over SSH (`cat >`), the content on stdin. */
  async writeFile(
    ref: ProviderRef,
    path: string,
    data: AsyncIterable<Uint8Array> | Uint8Array,
    opts?: CallOptions & { mode?: number },
  ): Promise<void> {
    const r = proxmoxRef(ref);
    this.#noContainer(r, 'files');
    const chunks: Uint8Array[] = [];
    if (data instanceof Uint8Array) chunks.push(data);
    else for await (const c of data) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    const o = call(opts, TIMEOUTS.action);
    if (bytes.length <= 45_000 && this.guests.o.readiness === 'agent') {
      await this.guests.onGuest(r, o, (x) => this.guests.qemu(x).agent.fileWrite(path, bytes, o));
    } else {
      const res = await this.guests.shell(r, `cat > ${shellQuote(path)}`, { ...o, stdin: bytes });
      if (res.exitCode !== 0) throw new Error(`writing ${path} failed: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
    }
    if (opts?.mode !== undefined) {
      const res = await this.guests.shell(r, `chmod ${(opts.mode & 0o7777).toString(8)} ${shellQuote(path)}`, o);
      if (res.exitCode !== 0) throw new Error(`chmod ${path} failed: ${res.stderr.trim()}`);
    }
  }

  /**
   * From `status/current`. PVE keeps no cumulative CPU time: `cpuSeconds` is the current usage
   * fraction × vCPUs × uptime, an estimate that is exact only for a steady load.
   */
  async stats(ref: ProviderRef, opts?: CallOptions): Promise<GuestStats> {
    const o = call(opts, TIMEOUTS.read);
    const s = await this.guests.onGuest(proxmoxRef(ref), o, (r) => this.guests.api(r).status.current(o));
    const vcpus = typeof s.cpus === 'number' ? s.cpus : 1;
    return {
      cpuSeconds: (s.cpu ?? 0) * vcpus * (s.uptime ?? 0),
      memoryRssBytes: s.mem ?? 0,
      memoryVmsBytes: s.maxmem ?? 0,
      networkRxBytes: s.netin ?? 0,
      networkTxBytes: s.netout ?? 0,
      allocatedVcpus: vcpus,
      allocatedMemoryBytes: s.maxmem ?? 0,
    };
  }

  async setCpu(ref: ProviderRef, vcpus: number, opts?: CallOptions): Promise<void> {
    const o = call(opts, TIMEOUTS.action);
    await this.guests.onGuest(proxmoxRef(ref), o, async (r) => {
      if (r.kind === 'lxc') await this.#pve.lxc(r.node, r.vmid).setResources({ cores: vcpus }, o);
      else await runTask(o, (x) => this.#pve.qemu(r.node, r.vmid).setResources({ cores: vcpus }, x));
    });
  }

  async setMemory(ref: ProviderRef, memoryMiB: number, opts?: CallOptions): Promise<void> {
    const o = call(opts, TIMEOUTS.action);
    await this.guests.onGuest(proxmoxRef(ref), o, async (r) => {
      if (r.kind === 'lxc') await this.#pve.lxc(r.node, r.vmid).setResources({ memoryMiB }, o);
      else await runTask(o, (x) => this.#pve.qemu(r.node, r.vmid).setResources({ memoryMiB }, x));
    });
  }

  /** `resize <disk> +NG` of the root disk (scsi0, or the container's rootfs). */
  async growDisk(ref: ProviderRef, byGiB: number, opts?: CallOptions): Promise<void> {
    const by = checkGrowth(byGiB);
    await this.#task(ref, opts, async (api, o, r) => {
      const config = await api.config({ ...o, fresh: true });
      const root =
        r.kind === 'lxc'
          ? 'rootfs'
          : (config.disks.find((d) => d.device === 'scsi0' && !d.isCdrom)?.device ??
            config.disks.find((d) => !d.isCdrom && d.bus !== 'unused' && d.bus !== 'efidisk' && d.bus !== 'tpmstate')
              ?.device);
      if (!root)
        throw new UnsupportedError({
          provider: this.name,
          capability: 'grow-disk',
          message: `guest ${r.vmid} has no disk to grow`,
        });
      return api.resize(root, `+${by}G`, o);
    });
  }

  /** Moves the guest: a running VM live with its local disks, a stopped one offline; a running container by restart. */
  async migrate(ref: ProviderRef, node: string, opts?: CallOptions): Promise<ProviderRef> {
    const o = call(opts, 60 * 60_000);
    return this.guests.onGuest(proxmoxRef(ref), o, async (r) => {
      if (r.node === node) return r;
      if (r.kind === 'lxc') {
        const ct = this.#pve.lxc(r.node, r.vmid);
        const running = (await ct.status.current(o)).status === 'running';
        await runTask(o, (x) => ct.migrate(node, { ...x, restart: running }));
      } else {
        const vm = this.#pve.qemu(r.node, r.vmid);
        const running = (await vm.status.current(o)).status === 'running';
        await runTask(o, (x) => vm.migrate(node, { ...x, online: running, withLocalDisks: true }));
      }
      return { ...r, node } satisfies ProxmoxRef;
    });
  }

  /** A snapshot; a running VM's RAM goes with it (`vmstate`) unless `stateful` is false. */
  async snapshot(ref: ProviderRef, name: string, opts?: CallOptions & { stateful?: boolean }): Promise<void> {
    await this.#task(ref, opts, async (api, o, r) => {
      let vmstate = false;
      if (r.kind === 'qemu' && opts?.stateful !== false) vmstate = (await api.status.current(o)).status === 'running';
      return api.snapshots.create(name, { ...o, ...(r.kind === 'qemu' ? { vmstate } : {}) });
    });
  }

  async restoreSnapshot(ref: ProviderRef, name: string, opts?: CallOptions): Promise<void> {
    await this.#task(ref, opts, (api, o) => api.snapshots.rollback(name, o));
  }

  async deleteSnapshot(ref: ProviderRef, name: string, opts?: CallOptions): Promise<void> {
    await this.#task(ref, opts, (api, o) => api.snapshots.delete(name, o));
  }

  /** Hibernates a VM: its RAM to disk (`suspend todisk=1`), the QEMU process ends. */
  async standby(ref: ProviderRef, opts?: CallOptions): Promise<void> {
    const r = proxmoxRef(ref);
    this.#noContainer(r, 'standby');
    await this.#task(r, opts, (_api, o, x) => this.#pve.qemu(x.node, x.vmid).suspend({ ...o, toDisk: true }));
  }

  /** Wakes a hibernated VM (`start` reads its saved RAM) or continues a paused one (`resume`). */
  async resume(ref: ProviderRef, opts?: CallOptions): Promise<void> {
    await this.#task(ref, opts, async (api, o) => {
      const s = await api.status.current(o);
      return s.status === 'stopped' ? api.start(o) : api.resume(o);
    });
  }

  /**
   * A full clone named `name`, on the same node. `opts.vmid` is the VMID core reserved for it;
   * without one PVE's next free id is taken, which is not a reservation (two forks at once may race).
   */
  async fork(ref: ProviderRef, name: string, opts?: CallOptions & { vmid?: number }): Promise<ProviderRef> {
    const o = call(opts, 60 * 60_000);
    return this.guests.onGuest(proxmoxRef(ref), o, async (r) => {
      const api = this.guests.api(r);
      const vmid = opts?.vmid ?? (await this.#pve.cluster.nextId(o));
      await runTask(o, async (x) => (await api.clone({ ...x, newid: vmid, name: guestName(name), full: true })).task);
      return { type: 'proxmox', node: r.node, vmid, kind: r.kind } satisfies ProxmoxRef;
    });
  }

  /** Closes the client's idle connections when the provider made the client. */
  close(): void {
    if (this.guests.o.ownsClient) this.#pve.close();
  }

  #noContainer(r: ProxmoxRef, capability: Capability | string): void {
    if (r.kind === 'lxc') {
      throw new UnsupportedError({
        provider: this.name,
        capability,
        message: `PVE's API has no ${capability} for containers (no guest agent)`,
      });
    }
  }

  async #task(
    ref: ProviderRef,
    opts: CallOptions | undefined,
    start: (api: ReturnType<ProxmoxGuests['api']>, o: CallOptions, r: ProxmoxRef) => Promise<Task>,
  ): Promise<void> {
    const o = call(opts, TIMEOUTS.action);
    await this.guests.onGuest(proxmoxRef(ref), o, (r) => runTask(o, (x) => start(this.guests.api(r), x, r)));
  }
}

/** Makes the provider: `createProxmoxProvider({ name, client, sshKeyDir, network: { gateway } })`. */
export function createProxmoxProvider(opts: ProxmoxProviderOptions): ProxmoxProvider {
  return new ProxmoxProvider(opts);
}
