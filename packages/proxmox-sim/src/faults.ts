/** Where a fault applies: a glob over the concrete path (`*` one segment, `**` any), a path template, or a RegExp. */
export type FaultPattern = string | RegExp;

export interface FailOptions {
  /** HTTP status to answer (default 503). */
  status?: number;
  /** Message and reason phrase (default "Service Unavailable"). */
  message?: string;
  /** Only for this HTTP method. */
  method?: string;
}

interface Rule {
  test: (method: string, path: string, template: string) => boolean;
  action: 'fail' | 'drop' | 'failTask';
  status: number;
  message: string;
  remaining: number;
  probability: number;
}

export interface FaultHooks {
  expireTickets(): void;
  setNodeOnline(node: string, online: boolean): void;
  failTask(type: string, message: string, times: number): void;
  guestFaultsChanged(vmid: number): void;
}

/** A command run in a guest (over SSH or the agent's exec) that fails or hangs. */
export interface GuestCommandFault {
  /** A substring of the command line, or a RegExp tested against it. */
  match: string | RegExp;
  /** Its exit status (default 1). */
  exitcode?: number;
  stdout?: string;
  stderr?: string;
  /** The command never ends: no output, no exit status, until the connection or the VM goes. */
  hang?: boolean;
  /** How many matching commands it applies to (default: all). */
  times?: number;
}

/** What can go wrong inside one guest, set with `sim.faults.guest(vmid, faults)`. */
export interface GuestFaults {
  /**
   * `silent`: the SSH server accepts TCP connections and never sends its banner. `off`: the guest
   * serves no SSH at all (connections are refused). Applies at once and across reboots.
   */
  ssh?: 'silent' | 'off';
  /** `silent`: the guest agent never answers; every agent call fails 'QEMU guest agent is not running'. */
  agent?: 'silent';
  commands?: GuestCommandFault[];
}

/** A fault the simulator applied to a request, as `sim.faults.injected` lists them. */
export interface InjectedFault {
  kind: 'latency' | 'fail' | 'drop' | 'failTask';
  method: string;
  /** The concrete path after `/api2/json`. */
  path: string;
  /** The delay added, for latency. */
  ms?: number;
  /** The status answered, for failures. */
  status?: number;
}

export type FaultDecision =
  | { kind: 'drop' }
  | { kind: 'fail'; status: number; message: string }
  | { kind: 'failTask'; message: string }
  | undefined;

function compilePattern(pattern: FaultPattern): (path: string, template: string) => boolean {
  if (pattern instanceof RegExp) return (p) => pattern.test(p);
  if (!pattern.includes('*')) return (p, t) => p === pattern || t === pattern;
  const re = new RegExp(
    `^${pattern
      .split(/(\*\*|\*)/)
      .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  return (p, t) => re.test(p) || re.test(t);
}

/** A small deterministic PRNG (mulberry32), so probabilistic faults repeat run to run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fault injection. Paths are those after `/api2/json`, e.g. `/nodes/pve1/qemu/100/status/current`
 * or the template `/nodes/{node}/qemu/{vmid}/status/current`.
 */
export class Faults {
  /** Added delay before every answer, in milliseconds. */
  latency = 0;
  /** The faults applied so far, oldest first (the last 1,000). */
  readonly injected: InjectedFault[] = [];
  private rules: Rule[] = [];
  private random: () => number;
  private readonly guests = new Map<number, { faults: GuestFaults; used: Map<GuestCommandFault, number> }>();

  constructor(
    private readonly hooks: FaultHooks,
    seed = 1,
  ) {
    this.random = rng(seed);
  }

  /** Re-seeds the generator behind probabilistic faults. */
  seed(seed: number): void {
    this.random = rng(seed);
  }

  private add(pattern: FaultPattern, rule: Omit<Rule, 'test'>, method: string | undefined): void {
    const match = compilePattern(pattern);
    const m = method?.toUpperCase();
    this.rules.push({ ...rule, test: (meth, p, t) => (m === undefined || m === meth) && match(p, t) });
  }

  /** The next `times` matching requests (default 1) answer `status` (default 503). */
  failNext(pattern: FaultPattern, options: FailOptions & { times?: number } = {}): void {
    this.add(
      pattern,
      {
        action: 'fail',
        status: options.status ?? 503,
        message: options.message ?? 'Service Unavailable',
        remaining: options.times ?? 1,
        probability: 1,
      },
      options.method,
    );
  }

  /** Each matching request fails with probability `p` (seeded, deterministic). */
  failRate(pattern: FaultPattern, probability: number, options: FailOptions = {}): void {
    this.add(
      pattern,
      {
        action: 'fail',
        status: options.status ?? 503,
        message: options.message ?? 'Service Unavailable',
        remaining: Number.POSITIVE_INFINITY,
        probability,
      },
      options.method,
    );
  }

  /** The next `times` matching requests get their connection destroyed without an answer. */
  dropNext(pattern: FaultPattern, options: { times?: number; method?: string } = {}): void {
    this.add(
      pattern,
      { action: 'drop', status: 0, message: '', remaining: options.times ?? 1, probability: 1 },
      options.method,
    );
  }

  /** Each matching request's connection is dropped with probability `p`. */
  dropRate(pattern: FaultPattern, probability: number, options: { method?: string } = {}): void {
    this.add(
      pattern,
      { action: 'drop', status: 0, message: '', remaining: Number.POSITIVE_INFINITY, probability },
      options.method,
    );
  }

  /**
   * The next `times` matching requests (default 1) are answered as usual, but the task each one
   * starts ends with `message` as its exitstatus (a create whose worker fails, a download that
   * breaks off): `failTask('/nodes/{node}/qemu', { message: '...', method: 'POST' })`.
   */
  failTask(pattern: FaultPattern, options: { message?: string; times?: number; method?: string } = {}): void {
    this.add(
      pattern,
      {
        action: 'failTask',
        status: 200,
        message: options.message ?? 'some error',
        remaining: options.times ?? 1,
        probability: 1,
      },
      options.method,
    );
  }

  /**
   * Sets what goes wrong inside a guest (replacing what was set before; `undefined` clears it):
   * its SSH server silent or off, its agent silent, commands that fail or hang. Guest faults stay
   * until changed, like node states; `clear()` leaves them.
   */
  guest(vmid: number, faults: GuestFaults | undefined): void {
    if (faults === undefined) this.guests.delete(vmid);
    else this.guests.set(vmid, { faults: { ...faults, commands: [...(faults.commands ?? [])] }, used: new Map() });
    this.hooks.guestFaultsChanged(vmid);
  }

  /** @internal The faults set for a guest. */
  guestFaults(vmid: number): GuestFaults | undefined {
    return this.guests.get(vmid)?.faults;
  }

  /** @internal The command fault that applies to a command line, counting it. */
  commandFault(vmid: number, command: string): GuestCommandFault | undefined {
    const entry = this.guests.get(vmid);
    for (const f of entry?.faults.commands ?? []) {
      const hit = typeof f.match === 'string' ? command.includes(f.match) : f.match.test(command);
      if (!hit || !entry) continue;
      const used = entry.used.get(f) ?? 0;
      if (f.times !== undefined && used >= f.times) continue;
      entry.used.set(f, used + 1);
      return f;
    }
    return undefined;
  }

  /** Invalidates every ticket and CSRF token issued so far. */
  expireTickets(): void {
    this.hooks.expireTickets();
  }

  /** Takes a node offline: requests for it answer 595, its guests show as unknown. */
  nodeOffline(node: string): void {
    this.hooks.setNodeOnline(node, false);
  }

  nodeOnline(node: string): void {
    this.hooks.setNodeOnline(node, true);
  }

  /** The next `times` tasks of `type` (e.g. `qmstart`, or `*` for any) end with `message` as exitstatus. */
  failNextTask(type: string, message = 'some error', times = 1): void {
    this.hooks.failTask(type, message, times);
  }

  /** Removes every request rule and the latency (node states and task failures stay). */
  clear(): void {
    this.rules = [];
    this.latency = 0;
  }

  /** @internal Records a fault applied to a request. */
  noteInjected(fault: InjectedFault): void {
    this.injected.push(fault);
    if (this.injected.length > 1000) this.injected.splice(0, this.injected.length - 1000);
  }

  /** @internal Decides what happens to one request. */
  decide(method: string, path: string, template: string): FaultDecision {
    if (this.rules.length === 0) return undefined;
    for (const rule of this.rules) {
      if (rule.remaining <= 0 || !rule.test(method, path, template)) continue;
      if (rule.probability < 1 && this.random() >= rule.probability) continue;
      rule.remaining--;
      if (rule.remaining <= 0) this.rules = this.rules.filter((r) => r !== rule);
      if (rule.action === 'drop') {
        this.noteInjected({ kind: 'drop', method, path });
        return { kind: 'drop' };
      }
      if (rule.action === 'failTask') {
        this.noteInjected({ kind: 'failTask', method, path });
        return { kind: 'failTask', message: rule.message };
      }
      this.noteInjected({ kind: 'fail', method, path, status: rule.status });
      return { kind: 'fail', status: rule.status, message: rule.message };
    }
    return undefined;
  }
}
