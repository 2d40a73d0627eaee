/**
 * Where the CLI finds its server. `vmplane serve` writes a client config (the URL it listens on and
 * an admin token it created for the local user) so that the other commands work without flags:
 *
 *   <dataDir>/client.json                          beside the server's state, for that server
 *   $XDG_CONFIG_HOME/vmplane/config.json           (~/.config/vmplane/config.json) the user's default
 *
 * Both are written with mode 0600, since they hold a token. The other commands read, in order:
 * VMPLANE_URL and VMPLANE_TOKEN, then the file named by VMPLANE_CONFIG, then the user's default.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './errors.js';

export interface ClientConfig {
  url: string;
  token?: string;
  /** The data directory of the server that wrote it, for people reading the file. */
  dataDir?: string;
}

export interface ResolvedConfig {
  url: string;
  token: string | undefined;
  /** Where the values came from, for error messages. */
  source: string;
}

/** go-pve-qemu's and hypeman's default ports are taken by those services; ours is its own. */
export const DEFAULT_URL = 'http://127.0.0.1:4780';

export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'vmplane', 'config.json');
}

export function dataDirConfigPath(dataDir: string): string {
  return join(dataDir, 'client.json');
}

export async function readClientConfig(path: string): Promise<ClientConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read the client config ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`the client config ${path} is not JSON`);
  }
  const { url, token, dataDir } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof url !== 'string') throw new CliError(`the client config ${path} has no "url"`);
  const config: ClientConfig = { url };
  if (typeof token === 'string') config.token = token;
  if (typeof dataDir === 'string') config.dataDir = dataDir;
  return config;
}

/**
 * Writes the file readable by its owner only. The content goes to a temporary file created 0600
 * and is renamed over the target, so no reader ever sees a half-written file or a moment of a
 * wider mode.
 */
export async function writeClientConfig(path: string, config: ClientConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, path);
}

export async function resolveClientConfig(env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  const path = env.VMPLANE_CONFIG && env.VMPLANE_CONFIG !== '' ? env.VMPLANE_CONFIG : userConfigPath(env);
  const file = await readClientConfig(path);
  if (env.VMPLANE_CONFIG && !file) throw new CliError(`VMPLANE_CONFIG names ${path}, which does not exist`);
  const url = nonEmpty(env.VMPLANE_URL) ?? file?.url ?? DEFAULT_URL;
  const token = nonEmpty(env.VMPLANE_TOKEN) ?? file?.token;
  const source = nonEmpty(env.VMPLANE_URL) ? 'VMPLANE_URL' : file ? path : 'the default URL';
  try {
    new URL(url);
  } catch {
    throw new CliError(`the server URL from ${source} is not a URL`);
  }
  return { url: url.replace(/\/+$/, ''), token, source };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
