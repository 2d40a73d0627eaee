import { type ChildProcess, spawn } from 'node:child_process';

export interface CliResult {
  /** Wall time of the whole `lxc` process, spawn to exit. */
  ms: number;
  /** Spawn and exit, epoch ms (the timing proxy's clock). */
  spawnedAt: number;
  exitedAt: number;
  stdout: string;
  stderr: string;
}

/** The `lxc` CLI, one process per call, timed as a whole. */
export interface Cli {
  readonly version: string;
  /** `env` is added to this process's environment (`LXD_DIR` to talk through a proxy, say). */
  run(args: readonly string[], env?: Readonly<Record<string, string>>): Promise<CliResult>;
  /** Kills the calls still running (Ctrl-C); answers how many there were. */
  killAll(): number;
}

export async function startCli(bin = 'lxc'): Promise<Cli> {
  const running = new Set<ChildProcess>();
  const run = (args: readonly string[], env?: Readonly<Record<string, string>>) =>
    new Promise<CliResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const t0 = performance.now();
      const spawnedAt = performance.timeOrigin + t0;
      // stdin is /dev/null, not a TTY: `lxc exec` then runs non-interactively, like the other clients.
      const child = spawn(bin, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(env ? { env: { ...process.env, ...env } } : {}),
      });
      running.add(child);
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.once('error', (e) => {
        running.delete(child);
        reject(e);
      });
      child.once('close', (code, signal) => {
        const t1 = performance.now();
        running.delete(child);
        if (code === 0)
          resolve({
            ms: t1 - t0,
            spawnedAt,
            exitedAt: performance.timeOrigin + t1,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(err).toString('utf8'),
          });
        else {
          const why = signal ? `signal ${signal}` : `exit code ${code}`;
          reject(new Error(`lxc ${args.join(' ')}: ${why}: ${Buffer.concat(err).toString('utf8').trim()}`));
        }
      });
    });
  const probe = await run(['version']);
  const version = /Client version:\s*(\S+)/.exec(probe.stdout)?.[1] ?? '?';
  return {
    version,
    run,
    killAll() {
      const n = running.size;
      for (const child of running) if (child.pid !== undefined) child.kill('SIGKILL');
      running.clear();
      return n;
    },
  };
}
