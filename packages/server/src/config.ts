import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { GoPveQemuSettings } from './types.js';

/** One provider as the config file names it. */
export type ProviderConfig = ({ type: 'lxd' } & LxdProviderConfig) | ({ type: 'proxmox' } & ProxmoxProviderConfig);

export interface LxdProviderConfig {
  /** The local daemon by socket discovery when absent; or an HTTPS URL with a client certificate. */
  url?: string;
  socket?: string;
  cert?: string;
  key?: string;
  serverCert?: string;
  project?: string;
}

export interface ProxmoxProviderConfig {
  url: string;
  tokenId?: string;
  tokenSecret?: string;
  username?: string;
  password?: string;
  fingerprint?: string;
  ca?: string;
  insecure?: boolean;
  /** Where VM disks go; default go-pve-qemu's ASSIGN_STORAGE, else `local-lvm`. */
  storage?: string;
  /** Where cloud images are downloaded (content `import`); default `local`. */
  imageStorage?: string;
  /** Where guests are made; default go-pve-qemu's MAIN_NODE, else the first online node. */
  mainNode?: string;
  /** The guests' gateway; default go-pve-qemu's GATEWAY (one of the two is required). */
  gateway?: string;
  bridge?: string;
  nameserver?: string;
  /** The port guests serve SSH on (default 22). */
  sshPort?: number;
  readiness?: 'ssh' | 'agent';
  /** This provider's readiness deadline (ms); default the top-level `readinessTimeoutMs`. */
  readinessTimeoutMs?: number;
}

/** The config file (YAML or JSON), as the issue gives its shape. */
export interface FileConfig {
  defaultProvider?: string;
  providers: Record<string, ProviderConfig>;
  gopveqemu?: GoPveQemuSettings;
  server?: { trustedProxies?: string[]; allowIps?: string[]; bodyLimit?: number; apiAuth?: 'token' | 'allowlist' };
  /** Cloud images (Proxmox): a base URL per OS replacing the official one (mirrors, tests). */
  images?: { mirrors?: Partial<Record<'debian' | 'ubuntu' | 'rocky', string>> };
  /** How long an install, start or reboot waits for a guest to answer (ms); default 5 min. */
  readinessTimeoutMs?: number;
  /** An install's whole deadline (ms); default 20 min. */
  installTimeoutMs?: number;
  /** How often every provider is listed to reconcile state (ms); default 2 s. */
  reconcileIntervalMs?: number;
}

const LXD_SOCKETS = ['/var/snap/lxd/common/lxd/unix.socket', '/var/lib/lxd/unix.socket'];

/** The local LXD daemon's socket, when there is one. */
export function localLxdSocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = env.LXD_SOCKET ? [env.LXD_SOCKET] : env.LXD_DIR ? [`${env.LXD_DIR}/unix.socket`] : LXD_SOCKETS;
  return candidates.find((p) => existsSync(p));
}

/**
 * Reads the config file; without one, the local LXD daemon when its socket is there. Named
 * providers carry `type`; the keys `lxd` and `proxmox` imply it. Secrets stay in the returned
 * object only, for the provider constructors: nothing here logs it.
 */
export async function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<FileConfig> {
  if (path === undefined) {
    const socket = localLxdSocket(env);
    return { providers: socket ? { lxd: { type: 'lxd', socket } } : {}, ...(socket ? { defaultProvider: 'lxd' } : {}) };
  }
  const text = await readFile(path, 'utf8');
  const raw: unknown = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${path}: the config must be a mapping`);
  const obj = raw as Record<string, unknown>;
  const known = new Set([
    'defaultProvider',
    'providers',
    'gopveqemu',
    'server',
    'images',
    'readinessTimeoutMs',
    'installTimeoutMs',
    'reconcileIntervalMs',
  ]);
  for (const k of Object.keys(obj)) if (!known.has(k)) throw new Error(`${path}: unknown key ${JSON.stringify(k)}`);
  const providers: Record<string, ProviderConfig> = {};
  const given = (obj.providers ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given)) throw new Error(`${path}: providers must be a mapping`);
  for (const [name, value] of Object.entries(given)) {
    const v = (value ?? {}) as Record<string, unknown>;
    const type = v.type ?? (name === 'lxd' || name === 'proxmox' ? name : undefined);
    if (type !== 'lxd' && type !== 'proxmox')
      throw new Error(`${path}: provider ${JSON.stringify(name)} needs type: lxd or type: proxmox`);
    if (type === 'proxmox' && typeof v.url !== 'string') throw new Error(`${path}: provider ${name} needs a url`);
    providers[name] = { ...v, type } as ProviderConfig;
  }
  const out: FileConfig = { providers };
  if (typeof obj.defaultProvider === 'string') out.defaultProvider = obj.defaultProvider;
  if (obj.gopveqemu && typeof obj.gopveqemu === 'object')
    out.gopveqemu = settingsFrom(obj.gopveqemu as Record<string, unknown>);
  if (obj.server && typeof obj.server === 'object') out.server = obj.server as NonNullable<FileConfig['server']>;
  if (obj.images !== undefined) {
    const images = obj.images as Record<string, unknown> | null;
    if (!images || typeof images !== 'object' || Array.isArray(images))
      throw new Error(`${path}: images must be a mapping`);
    for (const k of Object.keys(images)) if (k !== 'mirrors') throw new Error(`${path}: unknown key images.${k}`);
    out.images = images as NonNullable<FileConfig['images']>;
  }
  for (const k of ['readinessTimeoutMs', 'installTimeoutMs', 'reconcileIntervalMs'] as const) {
    const v = obj[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new Error(`${path}: ${k} must be a positive whole number of milliseconds`);
    out[k] = v;
  }
  return out;
}

/** `.env` as godotenv reads it: KEY=VALUE lines, optional quotes, `#` comments. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m?.[1]) continue;
    let value = m[2] ?? '';
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2] ?? '';
    else value = value.replace(/\s+#.*$/, '').trim();
    out[m[1]] = value;
  }
  return out;
}

const NUMERIC = [
  'ASSIGN_IP_START',
  'ASSIGN_IP_END',
  'VM_MAX_CPU',
  'VM_MAX_RAM',
  'VM_MAX_DISK',
  'VM_BALLOON_MIN',
] as const;
const TEXT = ['PORT', 'GATEWAY', 'MAIN_NODE', 'ASSIGN_STORAGE', 'ALLOW_IPS', 'VM_ROOT_PASSWORD'] as const;

/** go-pve-qemu's settings from a flat map (the environment, `.env`, or the config's `gopveqemu:`). */
export function settingsFrom(vars: Record<string, unknown>): GoPveQemuSettings {
  const out: GoPveQemuSettings = {};
  for (const k of TEXT) {
    const v = vars[k];
    if (v !== undefined && v !== null && String(v) !== '') out[k] = String(v);
  }
  for (const k of NUMERIC) {
    const v = vars[k];
    if (v === undefined || v === null || String(v) === '') continue;
    const n = Number.parseInt(String(v), 10);
    if (Number.isFinite(n)) out[k] = n;
  }
  const nodes: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars))
    if (k.startsWith('NODE_') && k.length > 5 && v) nodes[k.slice(5)] = String(v);
  if (vars.nodes && typeof vars.nodes === 'object') Object.assign(nodes, vars.nodes);
  if (Object.keys(nodes).length > 0) out.nodes = nodes;
  return out;
}

/**
 * go-pve-qemu's settings, later sources winning: the config's `gopveqemu:`, then `.env` in the
 * working directory, then the environment (as godotenv does not override what is set).
 */
export async function goPveQemuSettings(
  file: FileConfig,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<GoPveQemuSettings> {
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseDotEnv(await readFile(`${cwd}/.env`, 'utf8'));
  } catch {
    // No .env: go-pve-qemu warns and goes on; so does vmplane.
  }
  const fromFile = file.gopveqemu ?? {};
  const merged = { ...settingsFrom(dotenv), ...settingsFrom(env as Record<string, unknown>) };
  const nodes = { ...fromFile.nodes, ...merged.nodes };
  const out: GoPveQemuSettings = { ...fromFile, ...merged };
  if (Object.keys(nodes).length > 0) out.nodes = nodes;
  return out;
}
