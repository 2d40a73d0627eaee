/**
 * `vmplane serve` as a child process on a free port, with its own data directory and config home,
 * for the end-to-end tests. Only loopback is used; the child is stopped by its PID.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN } from './child.js';

const run = promisify(execFile);

export interface Served {
  url: string;
  dataDir: string;
  /** The environment the CLI children run with: the config home the server wrote to. */
  env: NodeJS.ProcessEnv;
  child: ChildProcess;
  output(): string;
  /** SIGTERM to our child; resolves with its exit code. */
  stop(): Promise<number | null>;
}

export async function startServe(): Promise<Served> {
  const root = await mkdtemp(join(tmpdir(), 'vmpt-cli-e2e-'));
  const dataDir = join(root, 'data');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(root, 'config'), NO_COLOR: '1' };
  delete env.VMPLANE_URL;
  delete env.VMPLANE_TOKEN;
  delete env.VMPLANE_CONFIG;
  // The working directory is the temp root, so no `.env` of the developer's is read.
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m?.[1]) resolve(m[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`vmplane serve exited ${code} before it was ready:\n${output}`)));
  });
  return {
    url,
    dataDir,
    env,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
        process.kill(child.pid, 'SIGTERM');
      const code = await exited;
      await rm(root, { recursive: true, force: true });
      return code;
    },
  };
}

/** True when the local LXD daemon answers (the e2e tests need it). */
export async function lxdAvailable(): Promise<boolean> {
  try {
    await run('lxc', ['info'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export function lxc(args: string[]) {
  return run('lxc', args, { timeout: 120_000 });
}

/** Deletes the LXD instances whose names start with `prefix`, whatever state they are in. */
export async function deleteInstances(prefix: string): Promise<void> {
  const { stdout } = await lxc(['list', '--format', 'json']);
  const names = (JSON.parse(stdout) as { name: string }[]).map((i) => i.name).filter((n) => n.startsWith(prefix));
  for (const name of names) await lxc(['delete', '--force', name]).catch(() => undefined);
}
