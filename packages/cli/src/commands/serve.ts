/**
 * `vmplane serve`: runs @vmplane/server in this process until SIGTERM or Ctrl-C.
 *
 * Once it listens, it makes sure the local user holds an admin token (the one recorded in
 * `<dataDir>/client.json` while the store accepts it, otherwise a new one), writes the client config
 * (URL and token, mode 0600) to `<dataDir>/client.json` and to the user's
 * `~/.config/vmplane/config.json`, so that `vmplane list` and the rest need no flags, and only then
 * prints its ready line.
 */
import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Store } from '@vmplane/core';
import type { StartOptions } from '@vmplane/server';
import { dataDirConfigPath, readClientConfig, userConfigPath, writeClientConfig } from '../config.js';
import { CliError, UsageError } from '../errors.js';

export interface ServeFlags {
  port?: string;
  dataDir?: string;
  config?: string;
  host?: string;
  /** `--no-client-config`: leave ~/.config alone (the data directory's copy is still written). */
  clientConfig?: boolean;
}

/** What serve needs of the process: injectable so that tests can drive it in-process. */
export interface ServeIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  signals: Pick<NodeJS.Process, 'once' | 'off'>;
  env: NodeJS.ProcessEnv;
  /** The parent's PID now (process.ppid); absent in tests, where no parent is watched. */
  ppid?: () => number;
}

export function parsePort(value: string | undefined): number {
  if (value === undefined) throw new UsageError('--port is required (0 picks a free one)');
  const port = Number(value);
  if (!/^[0-9]+$/.test(value) || port > 65535)
    throw new UsageError(`--port must be 0 to 65535, not ${JSON.stringify(value)}`);
  return port;
}

/** The admin token the local user's CLI uses: the recorded one while the store still accepts it. */
async function localAdminToken(store: Store, dataDir: string): Promise<string> {
  const existing = await readClientConfig(dataDirConfigPath(dataDir)).catch(() => undefined);
  if (existing?.token) {
    const record = await store.tokens.verify(existing.token);
    if (record && record.scope === 'admin' && !record.revokedAt) return existing.token;
  }
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers): the generic name is fine.
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const { token } = await store.tokens.create({ scope: 'admin', name: `cli ${user}@${hostname()} ${stamp}` });
  return token;
}

/** Starts the server; resolves with the exit code once a signal has stopped it. */
export async function serve(flags: ServeFlags, io: ServeIo): Promise<number> {
  const port = parsePort(flags.port);
  if (!flags.dataDir) throw new UsageError('--data-dir is required: where the server keeps its state');
  const dataDir = resolve(flags.dataDir);
  const host = flags.host ?? '127.0.0.1';

  // Loaded here, not at the top: the other commands should not pay for Fastify and the providers.
  const { startServer } = await import('@vmplane/server');
  // The ready line and the signals are ours: the line must come after the client config exists,
  // since whoever waits for it (a script, a test) goes on to use that config.
  const opts: StartOptions = { dataDir, port, host, print: false, handleSignals: false, env: io.env };
  if (flags.config !== undefined) opts.configPath = resolve(flags.config);
  let started: Awaited<ReturnType<typeof startServer>>;
  try {
    started = await startServer(opts);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new CliError(`port ${port} on ${host} is in use`, { hint: 'pick another --port' });
    if (code === 'EACCES') throw new CliError(`not allowed to listen on ${host}:${port}`);
    throw error;
  }
  const url = started.url;
  let token: string;
  try {
    token = await localAdminToken(started.store, dataDir);
  } catch (error) {
    await started.close();
    throw error;
  }

  const config = { url, token, dataDir };
  await writeClientConfig(dataDirConfigPath(dataDir), config);
  const written = [dataDirConfigPath(dataDir)];
  if (flags.clientConfig !== false) {
    try {
      await writeClientConfig(userConfigPath(io.env), config);
      written.push(userConfigPath(io.env));
    } catch (error) {
      io.stderr.write(`warning: could not write ${userConfigPath(io.env)}: ${(error as Error).message}\n`);
    }
  }

  io.stdout.write(`vmplane listening on ${url}\n`);
  io.stderr.write(`client config (URL and an admin token, mode 0600): ${written.join(', ')}\n`);
  io.stderr.write(`try: npx vmplane list   or   curl -H "Authorization: Bearer $TOKEN" ${url}/instances\n`);

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      io.signals.off('SIGTERM', stop);
      io.signals.off('SIGINT', stop);
      io.stderr.write(`${why}: stopping (running operations are undone)...\n`);
      started.close().then(
        () => {
          io.stderr.write('stopped\n');
          resolveExit(0);
        },
        (error: unknown) => {
          io.stderr.write(`error while stopping: ${error instanceof Error ? error.message : error}\n`);
          resolveExit(1);
        },
      );
    };
    io.signals.once('SIGTERM', stop);
    io.signals.once('SIGINT', stop);
    // `npx vmplane serve` runs us under npm's `sh -c`. SIGTERM to npx reaches that shell, which
    // dies without passing it on, and we would be left serving as an orphan of init. So when the
    // process that started us is gone, we stop as if we had been sent SIGTERM ourselves.
    const parent = io.ppid?.();
    if (parent !== undefined && parent > 1) {
      const watch = setInterval(() => {
        if (io.ppid?.() === parent) return;
        clearInterval(watch);
        stop('the parent process (npx) is gone');
      }, 500);
      watch.unref();
    }
  });
}
