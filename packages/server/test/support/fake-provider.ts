import type {
  Capability,
  ExecRequest,
  GuestProcess,
  InstallPlan,
  InstallSpec,
  InstallStageName,
  ObservedGuest,
  PathInfo,
  Provider,
  ProviderRef,
} from '@vmplane/core';
import { INSTALL_STAGES } from '@vmplane/core';

/**
 * A provider with no backend, for the server's in-process tests: guests live in a map, every
 * install stage succeeds (or fails where `failAt` says, or waits on `gate`), exec echoes.
 * Real backends are tested end to end elsewhere; this one exercises routing, validation, auth and
 * framing against the real ControlPlane and store.
 */
export class FakeProvider implements Provider {
  readonly name: string;
  readonly type = 'lxd' as const;
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>([
    'containers',
    'vms',
    'install',
    'exec',
    'files',
    'console-log',
    'stats',
    'resize-cpu',
    'resize-memory',
    'grow-disk',
  ]);
  readonly guests = new Map<string, ObservedGuest & { files: Map<string, Uint8Array> }>();
  failAt: InstallStageName | undefined;
  /** Stages wait on this before they run, when set. */
  gate: Promise<void> | undefined;
  readonly undo = {
    'fake.delete': async (payload: Record<string, unknown>) => {
      this.guests.delete(String(payload.name));
    },
  };

  constructor(name = 'fake') {
    this.name = name;
  }

  async probe() {
    return { reachable: true, version: 'fake' };
  }
  async nodes() {
    return [{ name: 'fake-node', online: true, cpus: 8, memoryBytes: 16 * 1024 ** 3, memoryUsedBytes: 1024 ** 3 }];
  }
  async list() {
    return [...this.guests.values()];
  }
  async get(ref: ProviderRef) {
    return ref.type === 'lxd' ? this.guests.get(ref.name) : undefined;
  }
  async used() {
    return { vmids: new Set<number>(), ipv4: new Set<string>() };
  }

  install(spec: InstallSpec): InstallPlan {
    const plan = {} as InstallPlan;
    for (const name of INSTALL_STAGES) {
      plan[name] = async (ctx, state) => {
        if (this.gate) await this.gate;
        if (this.failAt === name) throw new Error(`injected failure at ${name}`);
        if (name === 'VM creation > creating VM') {
          await ctx.registerUndo('fake.delete', { name: spec.name });
          const ref: ProviderRef = { type: 'lxd', project: 'default', name: spec.name, kind: 'container' };
          this.guests.set(spec.name, {
            ref,
            name: spec.name,
            state: 'Running',
            backendStatus: 'Running',
            files: new Map(),
          });
          state.ref = ref;
          return { message: 'VM created successfully' };
        }
        return { skipped: true };
      };
    }
    return plan;
  }

  #guest(ref: ProviderRef) {
    const g = ref.type === 'lxd' ? this.guests.get(ref.name) : undefined;
    if (!g) throw new Error('no such guest');
    return g;
  }
  async start(ref: ProviderRef) {
    this.#guest(ref).state = 'Running';
  }
  async stop(ref: ProviderRef) {
    this.#guest(ref).state = 'Stopped';
  }
  async reboot() {}
  async destroy(ref: ProviderRef) {
    if (ref.type === 'lxd') this.guests.delete(ref.name);
  }
  async waitReady() {}
  async setCpu() {}
  async setMemory() {}
  async growDisk() {}

  async exec(_ref: ProviderRef, request: ExecRequest): Promise<GuestProcess> {
    return fakeProcess(request);
  }
  async stat(ref: ProviderRef, path: string): Promise<PathInfo> {
    const f = this.#guest(ref).files.get(path);
    if (!f) return { exists: false };
    return { exists: true, is_file: true, is_dir: false, mode: 0o644, size: f.length };
  }
  async readFile(ref: ProviderRef, path: string): Promise<AsyncIterable<Uint8Array>> {
    const f = this.#guest(ref).files.get(path);
    if (!f) throw new Error(`open ${path}: no such file`);
    return (async function* () {
      yield f;
    })();
  }
  async writeFile(ref: ProviderRef, path: string, data: AsyncIterable<Uint8Array> | Uint8Array) {
    if (!(data instanceof Uint8Array)) throw new Error('streams not supported by the fake');
    this.#guest(ref).files.set(path, data);
  }
  async *consoleLog() {
    yield 'boot line 1';
    yield 'boot line "2"';
  }
  async stats() {
    return {
      cpuSeconds: 1.5,
      memoryRssBytes: 1024,
      memoryVmsBytes: 2048,
      networkRxBytes: 1,
      networkTxBytes: 2,
      allocatedVcpus: 2,
      allocatedMemoryBytes: 4096,
    };
  }
}

/**
 * `echo A B` prints `A B`; `fail N` prints `oops` on stderr and exits N; a TTY session echoes its
 * input and ends with 130 on Ctrl-C (as a shell killed by SIGINT does).
 */
function fakeProcess(request: ExecRequest): GuestProcess {
  const stdout = new Channel();
  const stderr = new Channel();
  let settle: (code: number) => void = () => {};
  const exit = new Promise<number>((resolve) => {
    settle = resolve;
  });
  const end = (code: number) => {
    stdout.close();
    stderr.close();
    settle(code);
  };
  const [cmd, ...args] = request.command;
  if (!request.tty) {
    queueMicrotask(() => {
      if (cmd === 'echo') {
        stdout.push(`${args.join(' ')}\n`);
        end(0);
      } else if (cmd === 'fail') {
        stdout.push('out\n');
        stderr.push('oops\n');
        end(Number(args[0] ?? 1));
      } else end(0);
    });
  }
  let size = '';
  return {
    stdout,
    stderr,
    exit,
    async write(data) {
      const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
      if (!request.tty) return;
      if (text.includes('\x03')) {
        stdout.push(`^C${size}`);
        end(130);
      } else stdout.push(text);
    },
    async closeStdin() {},
    async resize(rows, cols) {
      size = ` [${rows}x${cols}]`;
      stdout.push(`resized ${rows}x${cols}\r\n`);
    },
    async signal() {
      end(137);
    },
    close() {},
  };
}

class Channel implements AsyncIterable<Uint8Array> {
  readonly #queue: Uint8Array[] = [];
  #closed = false;
  #wake: (() => void) | undefined;
  push(text: string) {
    this.#queue.push(Buffer.from(text));
    this.#wake?.();
  }
  close() {
    this.#closed = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      const next = this.#queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((r) => {
        this.#wake = r;
      });
      this.#wake = undefined;
    }
  }
}
