import {
  type BackoffOptions,
  backoffDelay,
  type CallOptions,
  deadline,
  InvalidArgumentError,
  sleep,
  TimeoutError,
} from '@vmplane/common';
import {
  type ClusterResource,
  isAgentUnavailable,
  type LxcApi,
  type ProxmoxClient,
  parseGuestConfig,
  type QemuApi,
} from '@vmplane/proxmox';
import { InvalidRequestError, ReadinessTimeoutError, UnsupportedError } from '../../errors.js';
import type { ProxmoxRef } from '../../model/instance.js';
import { connectSsh, type SshTarget } from '../../ssh/connect.js';
import { loadSshKey, type SshKeyPair } from '../../ssh/keys.js';
import { startSshProcess } from '../../ssh/process.js';
import { waitForSsh } from '../../ssh/ready.js';
import { runOnConnection } from '../../ssh/run.js';
import type { ExecRequest, GuestProcess, ObservedGuest, UsedResources } from '../provider.js';
import { agentProcess, agentShell } from './guest-access.js';
import type { ResolvedOptions } from './options.js';
import { backendStatus, hypemanState } from './states.js';
import { call, isGuestMissing, parseTags, proxmoxRef, runTask } from './util.js';

/** Default deadlines of provider calls, in ms. */
export const TIMEOUTS = { read: 30_000, action: 5 * 60_000, destroy: 10 * 60_000 };

/**
 * The parts of the Proxmox provider the lifecycle calls and the install plan share: finding a
 * guest, its API object, how to reach it, and waiting for it to take commands.
 */
export class ProxmoxGuests {
  readonly o: ResolvedOptions;
  readonly pve: ProxmoxClient;
  /** Addresses last seen per guest, kept for guests whose config cannot be read right now. */
  readonly #lastAddresses = new Map<number, string[]>();

  constructor(o: ResolvedOptions) {
    this.o = o;
    this.pve = o.client;
  }

  /** Every VM and container of the cluster, as PVE lists them now (one request, never cached). */
  async resources(opts: CallOptions): Promise<ClusterResource[]> {
    const all = await this.pve.cluster.resources({ ...call(opts, TIMEOUTS.read), type: 'vm', fresh: true });
    return all.filter((r) => (r.type === 'qemu' || r.type === 'lxc') && typeof r.vmid === 'number');
  }

  observed(r: ClusterResource): ObservedGuest {
    const kind = r.type === 'lxc' ? 'lxc' : 'qemu';
    const guest: ObservedGuest = {
      ref: { type: 'proxmox', node: r.node ?? '', vmid: r.vmid ?? 0, kind },
      name: r.name ?? `${kind === 'qemu' ? 'vm' : 'ct'}${r.vmid}`,
      state: hypemanState(kind, r.status, r.lock),
      backendStatus: backendStatus(r.status, r.lock),
    };
    if (r.maxcpu !== undefined) guest.vcpus = r.maxcpu;
    if (r.maxmem !== undefined) guest.memoryBytes = r.maxmem;
    const tags = parseTags(r.tags);
    if (tags) guest.tags = tags;
    return guest;
  }

  /** Where the guest is now (it may have migrated since the ref was written), or undefined. */
  async locate(ref: ProxmoxRef, opts: CallOptions): Promise<ProxmoxRef | undefined> {
    const r = (await this.resources(opts)).find((x) => x.vmid === ref.vmid);
    if (!r?.node) return undefined;
    return { type: 'proxmox', node: r.node, vmid: ref.vmid, kind: r.type === 'lxc' ? 'lxc' : 'qemu' };
  }

  api(ref: ProxmoxRef): QemuApi | LxcApi {
    return ref.kind === 'lxc' ? this.pve.lxc(ref.node, ref.vmid) : this.pve.qemu(ref.node, ref.vmid);
  }

  qemu(ref: ProxmoxRef): QemuApi {
    if (ref.kind !== 'qemu') {
      throw new UnsupportedError({
        provider: this.o.name,
        capability: 'guest agent',
        message: 'containers have no guest agent',
      });
    }
    return this.pve.qemu(ref.node, ref.vmid);
  }

  /**
   * Runs `fn` on the guest where the ref says it is and, when PVE answers that it is not there
   * (it migrated outside vmplane), once more where the cluster says it is now. Nothing happened
   * on the first try (PVE refused before acting), so the second is no repeat.
   */
  async onGuest<T>(ref: ProxmoxRef, opts: CallOptions, fn: (ref: ProxmoxRef) => Promise<T>): Promise<T> {
    const r = proxmoxRef(ref);
    try {
      return await fn(r);
    } catch (error) {
      if (!isGuestMissing(error, r.vmid)) throw error;
      const now = await this.locate(r, opts);
      if (!now || now.node === r.node) throw error;
      return fn(now);
    }
  }

  /** How vmplane logs in to the VM: its cloud-init user and address, vmplane's key. */
  async sshTarget(ref: ProxmoxRef, opts: CallOptions, key?: SshKeyPair): Promise<SshTarget> {
    const config = await this.api(ref).config({ ...call(opts, TIMEOUTS.read), fresh: true });
    const ip = config.ipConfigs[0]?.ip?.split('/')[0] ?? config.networks[0]?.ip?.split('/')[0];
    if (!ip || ip === 'dhcp') {
      throw new InvalidRequestError({ message: `VM ${ref.vmid} has no static ipconfig0 address to reach it by SSH` });
    }
    const username = typeof config.raw.ciuser === 'string' ? config.raw.ciuser : 'root';
    const k = key ?? (await loadSshKey(this.o.sshKeyDir));
    if (!k) throw new InvalidRequestError({ message: `no SSH key in ${this.o.sshKeyDir}: nothing vmplane installed` });
    return { host: ip, port: this.o.sshPort, username, key: k };
  }

  /**
   * Resolves once the guest takes commands: SSH (TCP, banner, key, `true`), the guest agent's
   * ping, or, for a container, its status `running`. The deadline (timeout, default the boot
   * timeout, or the signal) is a ReadinessTimeoutError.
   */
  async waitReady(
    ref: ProxmoxRef,
    opts: CallOptions & {
      readiness?: 'ssh' | 'agent' | 'exec';
      log?: (line: string) => void | Promise<void>;
      target?: SshTarget;
    },
  ): Promise<{ hostKey?: string }> {
    const readiness = ref.kind === 'lxc' && opts.readiness !== 'ssh' ? 'status' : (opts.readiness ?? this.o.readiness);
    const timeout = opts.timeout ?? this.o.bootTimeoutMs;
    if (readiness === 'ssh') {
      const target = opts.target ?? (await this.sshTarget(ref, { signal: opts.signal, timeout: TIMEOUTS.read }));
      const r = await waitForSsh(target, {
        timeout,
        signal: opts.signal,
        ...(opts.log ? { log: opts.log } : {}),
      });
      return { hostKey: r.hostKey };
    }
    await this.#poll(ref, { timeout, signal: opts.signal }, readiness === 'status' ? 'status' : 'agent', opts.log);
    return {};
  }

  async #poll(
    ref: ProxmoxRef,
    opts: { timeout: number; signal?: AbortSignal | undefined },
    what: 'agent' | 'status',
    log?: (line: string) => void | Promise<void>,
  ): Promise<void> {
    const d = deadline(opts);
    const backoff: BackoffOptions = { initial: 250, max: 5_000 };
    let last = '';
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          if (what === 'agent') {
            await this.qemu(ref).agent.ping({ signal: d.signal, timeout: 10_000 });
            return;
          }
          const s = await this.api(ref).status.current({ signal: d.signal, timeout: 10_000 });
          if (s.status === 'running') return;
          last = `status ${s.status}`;
        } catch (error) {
          if (d.signal.aborted) break;
          if (what === 'agent' && !isAgentUnavailable(error, ref.vmid)) throw error;
          last = error instanceof Error ? error.message : String(error);
        }
        if (log && last) await log(`not ready yet: ${last}`);
        try {
          await sleep(backoffDelay(attempt, backoff), d.signal);
        } catch {
          break;
        }
      }
      const why = d.reason();
      if (why instanceof TimeoutError || opts.signal?.reason instanceof TimeoutError) {
        throw new ReadinessTimeoutError({
          message: `${ref.kind === 'qemu' ? 'VM' : 'CT'} ${ref.vmid} did not become ready (${what}) within ${opts.timeout} ms${last ? `: ${last}` : ''}`,
        });
      }
      throw why ?? new Error('aborted');
    } finally {
      d.dispose();
    }
  }

  /**
   * Every VMID in the cluster and every IPv4 address in a guest's config (`ipconfigN` of VMs,
   * `netN` of containers), read from all guests, not only vmplane's: an address a hand-made guest
   * holds must not be handed out either. That is one config read per guest (bounded concurrency,
   * the client's 30 s cache), acceptable since allocation happens once per install, not per
   * reconcile. A guest whose config cannot be read now (its node is offline) keeps the addresses
   * it had when last read.
   */
  async used(opts: CallOptions): Promise<UsedResources> {
    const resources = await this.resources(opts);
    const vmids = new Set(resources.map((r) => r.vmid ?? 0));
    const ipv4 = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < resources.length) {
        const r = resources[next++];
        if (!r?.node || r.vmid === undefined) continue;
        const ref: ProxmoxRef = {
          type: 'proxmox',
          node: r.node,
          vmid: r.vmid,
          kind: r.type === 'lxc' ? 'lxc' : 'qemu',
        };
        let found: string[] | undefined;
        try {
          const raw = await this.api(ref).rawConfig(call(opts, TIMEOUTS.read));
          const config = parseGuestConfig(ref.kind, raw);
          found = [...config.ipConfigs.map((c) => c.ip), ...config.networks.map((n) => n.ip)]
            .map((ip) => ip?.split('/')[0])
            .filter((ip): ip is string => ip !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(ip));
          this.#lastAddresses.set(r.vmid, found);
        } catch (error) {
          if (opts.signal?.aborted) throw error;
          found = this.#lastAddresses.get(r.vmid);
        }
        for (const ip of found ?? []) ipv4.add(ip);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, resources.length) }, worker));
    for (const vmid of this.#lastAddresses.keys()) if (!vmids.has(vmid)) this.#lastAddresses.delete(vmid);
    return { vmids, ipv4 };
  }

  /** A command over SSH in a VM vmplane installed, or through the agent when it is not reached by SSH. */
  async exec(ref: ProxmoxRef, request: ExecRequest, opts: CallOptions): Promise<GuestProcess> {
    if (ref.kind === 'lxc') {
      throw new UnsupportedError({
        provider: this.o.name,
        capability: 'exec',
        message: 'PVE has no API to run commands in a container',
      });
    }
    if (this.o.readiness === 'agent') {
      return agentProcess(this.qemu(ref), request, call(opts, TIMEOUTS.action));
    }
    const target = await this.sshTarget(ref, opts);
    const conn = await connectSsh(target, call(opts, TIMEOUTS.read));
    return startSshProcess(conn, request);
  }

  /** Runs one shell line in a VM (SSH or agent) and answers its exit code and output. */
  async shell(ref: ProxmoxRef, command: string, opts: CallOptions & { stdin?: string | Uint8Array }) {
    let stdout = '';
    let stderr = '';
    const onLine = (line: string, stream: 'stdout' | 'stderr') => {
      if (stream === 'stdout') stdout += `${line}\n`;
      else stderr += `${line}\n`;
    };
    const run = { ...call(opts, TIMEOUTS.action), onLine, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) };
    if (this.o.readiness === 'agent') {
      const r = await agentShell(this.qemu(ref)).run(command, run);
      return { exitCode: r.exitCode, stdout, stderr };
    }
    const conn = await connectSsh(await this.sshTarget(ref, opts), call(opts, TIMEOUTS.read));
    try {
      const r = await runOnConnection(conn, command, run);
      return { exitCode: r.exitCode, stdout, stderr };
    } finally {
      conn.close();
    }
  }

  /** Stops (skiplock) and deletes a guest with its disks; a guest that is gone is fine. */
  async destroy(ref: ProxmoxRef, opts: CallOptions): Promise<void> {
    const d = deadline(call(opts, TIMEOUTS.destroy));
    try {
      const where = await this.locate(ref, { signal: d.signal });
      if (!where) return;
      const api = this.api(where);
      const status = await api.status.current({ signal: d.signal }).catch((error: unknown) => {
        if (isGuestMissing(error, ref.vmid)) return undefined;
        throw error;
      });
      if (!status) return;
      if (status.status !== 'stopped') {
        await runTask({ signal: d.signal }, (o) =>
          where.kind === 'qemu' ? api.stop({ ...o, skiplock: true }) : api.stop(o),
        );
      }
      try {
        await runTask({ signal: d.signal }, (o) =>
          api.delete({
            ...o,
            purge: true,
            destroyUnreferencedDisks: true,
            ...(where.kind === 'qemu' ? { skiplock: true } : { force: true }),
          }),
        );
      } catch (error) {
        if (!isGuestMissing(error, ref.vmid)) throw error;
      }
    } catch (error) {
      throw d.reason() ?? error;
    } finally {
      d.dispose();
    }
  }
}

/** Bytes as PVE's size words take them (`+8G`): whole GiB only. */
export function checkGrowth(byGiB: number): number {
  if (!Number.isInteger(byGiB) || byGiB < 1 || byGiB > 64 * 1024) {
    throw new InvalidArgumentError({ message: 'byGiB must be a whole number of GiB from 1 up', argument: 'byGiB' });
  }
  return byGiB;
}
