import type { SimClock } from './clock.js';
import { hasCloudInitDrive, instanceId, sshKeysOf, staticAddress, storedCloudInitValue } from './cloud-init-data.js';
import type { Faults } from './faults.js';
import { type ExecOutcome, GuestSshServer, type SshAccount, type StdinSource } from './guest-ssh.js';
import { builtinExec, InputPending, type ShellResult } from './handlers/guest-shell.js';
import type { Guest, GuestPowerEvent, SimState } from './state.js';
import { isLoopbackHost } from './url-fetch.js';

/**
 * What runs inside simulated VMs that have a cloud-init drive: a boot that takes `bootDelayMs`
 * (measured on the simulator's clock) after each start or reboot, cloud-init applying the VM's
 * user settings on the first boot of each instance (a changed config makes a new instance), and an
 * SSH server on the `ipconfig0` address once booted. A stop, shutdown, reboot or destroy takes the
 * server down; a reboot brings it back after the boot delay.
 */

/** Where a guest serves SSH. */
export interface GuestSshAddress {
  host: string;
  port: number;
}

/** A scripted answer to a command run over SSH; undefined falls back to the built-in shell. */
export type GuestExecScript = (request: {
  vmid: number;
  node: string;
  user: string;
  command: string;
  /** The command's standard input, once the client has closed it. */
  stdin: Promise<string>;
}) =>
  | { exitcode?: number; stdout?: string; stderr?: string }
  | undefined
  | Promise<{ exitcode?: number; stdout?: string; stderr?: string } | undefined>;

export interface GuestRuntimeOptions {
  state: SimState;
  clock: SimClock;
  faults: Faults;
  bootDelayMs: number;
  sshPort: number;
  hostKey: string;
  exec: GuestExecScript | undefined;
  /** Reboots or powers off a VM as its guest OS asked (`reboot` over SSH). */
  power(g: Guest, action: 'reboot' | 'poweroff'): void;
}

/** What the guest's disk keeps across reboots. */
interface GuestOs {
  instanceId?: string;
  accounts: Map<string, SshAccount>;
}

interface Waiter {
  resolve(a: GuestSshAddress): void;
  reject(e: Error): void;
}

interface Runtime {
  phase: 'off' | 'booting' | 'up';
  bootAt: number;
  /** Counts boots, so that a server that finishes listening after a stop is closed. */
  boot: number;
  ssh?: GuestSshServer | undefined;
  /** Why the booted guest serves no SSH (no loopback address, the address cannot be bound). */
  sshError?: string | undefined;
  waiters: Set<Waiter>;
}

export class GuestRuntime {
  readonly #o: GuestRuntimeOptions;
  readonly #runtimes = new Map<number, Runtime>();
  readonly #os = new Map<number, GuestOs>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #closing = new Set<Promise<void>>();
  readonly #sleepers = new Set<() => void>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(options: GuestRuntimeOptions) {
    this.#o = options;
    this.#unsubscribe = options.clock.onAdvance(() => this.tick());
    options.state.onGuestPower((g, event) => this.#on(g, event));
    // Guests seeded as running have been up for a while: booted already.
    for (const g of options.state.guests.values()) if (g.status === 'running' && this.#booting(g)) this.#start(g, 0);
  }

  /** Where the guest serves SSH now, or undefined (stopped, booting, no loopback address, SSH off). */
  ssh(vmid: number): GuestSshAddress | undefined {
    const ssh = this.#runtimes.get(vmid)?.ssh;
    return ssh ? { host: ssh.host, port: ssh.port } : undefined;
  }

  /**
   * Resolves once the guest serves SSH; rejects when it cannot (not running and not starting, no
   * cloud-init drive, no loopback address, the address cannot be bound, the VM stops first).
   */
  waitForSsh(vmid: number, timeoutMs: number): Promise<GuestSshAddress> {
    const now = this.ssh(vmid);
    if (now) return Promise.resolve(now);
    const g = this.#o.state.guests.get(vmid);
    const starting = [...this.#o.state.tasks.values()].some(
      (t) =>
        t.status === 'running' &&
        t.id === String(vmid) &&
        /^qm(start|create|reboot|reset|rollback|resume)$/.test(t.type),
    );
    if (g?.status !== 'running' && !starting) return Promise.reject(new Error(`VM ${vmid} is not running`));
    const r = this.#runtime(vmid);
    if (g?.status === 'running' && r.phase === 'off')
      return Promise.reject(new Error(`VM ${vmid} has no cloud-init drive: it serves no SSH`));
    if (r.phase === 'up' && r.sshError !== undefined) return Promise.reject(new Error(r.sshError));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        r.waiters.delete(w);
        reject(new Error(`VM ${vmid} serves no SSH after ${timeoutMs} ms`));
      }, timeoutMs);
      const w: Waiter = {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      r.waiters.add(w);
    });
  }

  /** Boots whose time has come. */
  tick(): void {
    const now = this.#o.clock.now();
    for (const [vmid, r] of this.#runtimes) {
      if (r.phase !== 'booting' || r.bootAt > now) continue;
      const g = this.#o.state.guests.get(vmid);
      if (g?.status !== 'running') continue;
      r.phase = 'up';
      g.booting = false;
      this.#applyCloudInit(g);
      this.#serveSsh(g, r);
    }
  }

  /** The guest's faults changed: SSH off takes the server down, SSH on again brings it up. */
  refresh(vmid: number): void {
    const r = this.#runtimes.get(vmid);
    const g = this.#o.state.guests.get(vmid);
    if (!r || !g || r.phase !== 'up') return;
    if (this.#o.faults.guestFaults(vmid)?.ssh === 'off') this.#dropSsh(r);
    else if (!r.ssh) this.#serveSsh(g, r);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const wake of this.#sleepers) wake();
    this.#sleepers.clear();
    for (const r of this.#runtimes.values()) {
      this.#dropSsh(r);
      for (const w of r.waiters) w.reject(new Error('the simulator closed'));
      r.waiters.clear();
    }
    await Promise.all(this.#closing);
  }

  #booting(g: Guest): boolean {
    return g.type === 'qemu' && hasCloudInitDrive(g.config);
  }

  #on(g: Guest, event: GuestPowerEvent): void {
    if (this.#closed || g.type !== 'qemu') return;
    if (event === 'stop' || event === 'destroy' || event === 'reboot') this.#stop(g, event);
    if (event === 'destroy') this.#os.delete(g.vmid);
    if ((event === 'start' || event === 'reboot') && this.#booting(g)) this.#start(g, this.#o.bootDelayMs);
  }

  #runtime(vmid: number): Runtime {
    let r = this.#runtimes.get(vmid);
    if (!r) {
      r = { phase: 'off', bootAt: 0, boot: 0, waiters: new Set() };
      this.#runtimes.set(vmid, r);
    }
    return r;
  }

  #start(g: Guest, delay: number): void {
    const r = this.#runtime(g.vmid);
    r.phase = 'booting';
    r.boot++;
    r.sshError = undefined;
    r.bootAt = this.#o.clock.now() + delay;
    g.booting = true;
    if (delay <= 0) {
      this.tick();
      return;
    }
    const t = setTimeout(() => {
      this.#timers.delete(t);
      this.tick();
    }, delay + 1);
    this.#timers.add(t);
  }

  #stop(g: Guest, why: GuestPowerEvent): void {
    g.booting = false;
    const r = this.#runtimes.get(g.vmid);
    if (!r) return;
    r.phase = 'off';
    r.boot++;
    this.#dropSsh(r);
    // A waiter outlives a reboot: the guest will serve again.
    if (why === 'reboot') return;
    for (const w of r.waiters) w.reject(new Error(`VM ${g.vmid} stopped`));
    r.waiters.clear();
  }

  #dropSsh(r: Runtime): void {
    const ssh = r.ssh;
    r.ssh = undefined;
    if (!ssh) return;
    const closing = ssh.close().finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
  }

  /** cloud-init, once per instance: the user with the VM's keys (added to any it had) and password. */
  #applyCloudInit(g: Guest): void {
    const os = this.#os.get(g.vmid) ?? { accounts: new Map<string, SshAccount>() };
    this.#os.set(g.vmid, os);
    let id: string;
    try {
      id = instanceId(g.config, g.vmid);
    } catch {
      id = `broken-${g.vmid}`;
    }
    if (os.instanceId === id) return;
    os.instanceId = id;
    const user = String(g.config.ciuser ?? 'root');
    const account = os.accounts.get(user) ?? { keys: [] };
    for (const k of sshKeysOf(g.config)) if (!account.keys.includes(k)) account.keys.push(k);
    if (g.config.cipassword !== undefined) account.password = String(g.config.cipassword);
    os.accounts.set(user, account);
    g.files.set('/etc/hostname', `${String(g.config.name ?? `VM${g.vmid}`).replace(/\..*$/, '')}\n`);
  }

  #serveSsh(g: Guest, r: Runtime): void {
    const faults = this.#o.faults;
    if (faults.guestFaults(g.vmid)?.ssh === 'off') return;
    const host = staticAddress(g.config);
    if (host === undefined || !isLoopbackHost(host)) {
      this.#sshFailed(r, `VM ${g.vmid}: ipconfig0 has no loopback address (127.0.0.0/8) to serve SSH on`);
      return;
    }
    const boot = r.boot;
    const os = this.#os.get(g.vmid);
    GuestSshServer.start(host, this.#o.sshPort, {
      hostKey: this.#o.hostKey,
      account: (user) => os?.accounts.get(user),
      silent: () => faults.guestFaults(g.vmid)?.ssh === 'silent',
      exec: (user, command, stdin) => this.#exec(g, user, command, stdin),
      power: (action) => this.#o.power(g, action),
    }).then(
      (server) => {
        if (this.#closed || r.boot !== boot || r.phase !== 'up' || faults.guestFaults(g.vmid)?.ssh === 'off') {
          const closing = server.close().finally(() => this.#closing.delete(closing));
          this.#closing.add(closing);
          return;
        }
        r.ssh = server;
        for (const w of r.waiters) w.resolve({ host: server.host, port: server.port });
        r.waiters.clear();
      },
      (e: unknown) => {
        if (r.boot === boot)
          this.#sshFailed(r, `VM ${g.vmid}: SSH cannot listen on ${host}:${this.#o.sshPort}: ${String(e)}`);
      },
    );
  }

  #sshFailed(r: Runtime, why: string): void {
    r.sshError = why;
    for (const w of r.waiters) w.reject(new Error(why));
    r.waiters.clear();
  }

  /** A `sleep` in the guest: real time, cut short when the simulator closes. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.#timers.delete(t);
        this.#sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.#timers.add(t);
      this.#sleepers.add(wake);
    });
  }

  async #exec(g: Guest, user: string, command: string, stdin: StdinSource): Promise<ExecOutcome> {
    const fault = this.#o.faults.commandFault(g.vmid, command);
    if (fault?.hang) return 'hang';
    if (fault) return { exitcode: fault.exitcode ?? 1, stdout: fault.stdout ?? '', stderr: fault.stderr ?? '' };
    const scripted = await this.#o.exec?.({ vmid: g.vmid, node: g.node, user, command, stdin: stdin.all });
    if (scripted)
      return { exitcode: scripted.exitcode ?? 0, stdout: scripted.stdout ?? '', stderr: scripted.stderr ?? '' };
    const os = this.#os.get(g.vmid);
    const env = {
      user,
      unknown: 'shell' as const,
      setPassword: (name: string, password: string, hashed: boolean) => {
        const account = os?.accounts.get(name);
        if (!account) return false;
        account.password = hashed ? password : String(storedCloudInitValue('cipassword', password));
        return true;
      },
    };
    const run = (input: string | (() => string)): ShellResult => builtinExec(g, ['sh', '-c', command], input, env);
    let r: ShellResult;
    try {
      r = run(() => {
        const text = stdin.now();
        if (text === undefined) throw new InputPending();
        return text;
      });
    } catch (e) {
      if (!(e instanceof InputPending)) throw e;
      r = run(await stdin.all);
    }
    if (r.ms > 0) await this.#sleep(r.ms);
    return { exitcode: r.exitcode, stdout: r.out, stderr: r.err, action: r.action };
  }
}
