import { type ChildProcess, spawn } from 'node:child_process';

export interface CliResult {
  /** Wall time of the whole `lxc` process, spawn to exit. */
  ms: number;
  stdout: string;
  stderr: string;
}

/** The `lxc` CLI, one process per call, timed as a whole. */
export interface Cli {
  readonly version: string;
  run(args: readonly string[]): Promise<CliResult>;
  /** Kills the calls still running (Ctrl-C); answers how many there were. */
  killAll(): number;
}

export async function startCli(bin = 'lxc'): Promise<Cli> {
  const running = new Set<ChildProcess>();
  const run = (args: readonly string[]) =>
    new Promise<CliResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const t0 = performance.now();
      // stdin is /dev/null, not a TTY: `lxc exec` then runs non-interactively, like the other clients.
      const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(child);
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.once('error', (e) => {
        running.delete(child);
        reject(e);
      });
      child.once('close', (code, signal) => {
        const ms = performance.now() - t0;
        running.delete(child);
        if (code === 0)
          resolve({ ms, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
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

/**
 * The CLI's fixed cost per call. Every `lxc` command runs the same first steps: exec of the Go
 * binary, its config, a connection to the daemon and a `GET /1.0`. `lxc version` is the cheapest
 * command that reaches the daemon, and it sends a second `GET /1.0` for the version itself (seen
 * through a counting proxy on `LXD_SOCKET`: two connections, two `GET /1.0`). So the start-up is
 * `lxc version` minus one `GET /1.0`, timed right after with `getServer` (the same request, from
 * this process); subtracting all of `lxc version` would charge the CLI's operations a request less.
 */
export async function startupProbe(cli: Cli, getServer: () => Promise<unknown>): Promise<number> {
  const version = (await cli.run(['version'])).ms;
  const t0 = performance.now();
  await getServer();
  return version - (performance.now() - t0);
}
