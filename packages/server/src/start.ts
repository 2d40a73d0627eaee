import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  type AllocationPolicy,
  ControlPlane,
  type ControlPlaneApi,
  type ControlPlaneOptions,
  createLxdProvider,
  createProxmoxProvider,
  GoPveQemuAllocator,
  type InstallAllocator,
  type LxdProviderOptions,
  openStore,
  PolicyAllocator,
  type Provider,
  type ProxmoxProviderOptions,
  type Store,
} from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import {
  type FileConfig,
  goPveQemuSettings,
  type LxdProviderConfig,
  loadConfig,
  type ProxmoxProviderConfig,
} from './config.js';
import { buildServer } from './server.js';
import type { GoPveQemuSettings, ServerConfig } from './types.js';

export interface StartOptions {
  dataDir: string;
  configPath?: string;
  port: number;
  host?: string;
  /** Print the `listening on <url>` line (default true). */
  print?: boolean;
  /** Close on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  /** Fastify's logger (default: info lines on stderr). */
  logger?: ServerConfig['logger'];
  env?: NodeJS.ProcessEnv;
  /** Where `.env` is read from (default the working directory). */
  cwd?: string;
}

export interface StartedServer {
  url: string;
  app: FastifyInstance;
  plane: ControlPlaneApi;
  store: Store;
  addresses(): AddressInfo[];
  /** Closes the server, then the plane (running operations are undone), then the store. Idempotent. */
  close(): Promise<void>;
}

/** How to connect, rather than a connected client (which has a `transport`). */
type LxdConnectOptions = Exclude<NonNullable<LxdProviderOptions['client']>, { transport: unknown }>;
type ProxmoxClientOptions = Exclude<ProxmoxProviderOptions['client'], { transport: unknown }>;

async function pem(value: string | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  return value.includes('-----BEGIN') ? value : readFile(value, 'utf8');
}

interface BuildContext {
  file: FileConfig;
  settings: GoPveQemuSettings;
  dataDir: string;
}

/** The providers the config names, from core's constructors. */
async function buildProviders(b: BuildContext): Promise<Provider[]> {
  const out: Provider[] = [];
  for (const [name, cfg] of Object.entries(b.file.providers))
    out.push(cfg.type === 'lxd' ? await lxdProvider(name, cfg, b) : await proxmoxProvider(name, cfg, b));
  return out;
}

async function lxdProvider(name: string, cfg: LxdProviderConfig, b: BuildContext): Promise<Provider> {
  const client: LxdConnectOptions = {};
  if (cfg.socket) client.socketPath = cfg.socket;
  if (cfg.url) client.url = cfg.url;
  for (const k of ['cert', 'key', 'serverCert'] as const) {
    const v = await pem(cfg[k]);
    if (v !== undefined) client[k] = v;
  }
  const opts: LxdProviderOptions = { name, client };
  if (cfg.project) opts.project = cfg.project;
  if (b.file.readinessTimeoutMs !== undefined) opts.readinessTimeoutMs = b.file.readinessTimeoutMs;
  return createLxdProvider(opts);
}

async function proxmoxProvider(name: string, cfg: ProxmoxProviderConfig, b: BuildContext): Promise<Provider> {
  const tls: { fingerprint?: string; ca?: string; insecure?: boolean } = {};
  if (cfg.fingerprint !== undefined) tls.fingerprint = cfg.fingerprint;
  const ca = await pem(cfg.ca);
  if (ca !== undefined) tls.ca = ca;
  if (cfg.insecure === true) tls.insecure = true;
  let client: ProxmoxClientOptions;
  if (cfg.tokenId !== undefined && cfg.tokenSecret !== undefined)
    client = { baseUrl: cfg.url, tokenId: cfg.tokenId, tokenSecret: cfg.tokenSecret, ...tls };
  else if (cfg.username !== undefined && cfg.password !== undefined)
    client = { baseUrl: cfg.url, username: cfg.username, password: cfg.password, ...tls };
  else throw new Error(`provider ${name}: needs tokenId and tokenSecret, or username and password`);
  const gateway = cfg.gateway ?? b.settings.GATEWAY;
  if (!gateway) throw new Error(`provider ${name}: needs a gateway (go-pve-qemu's GATEWAY, or gateway:)`);
  const network: ProxmoxProviderOptions['network'] = { gateway };
  if (cfg.bridge) network.bridge = cfg.bridge;
  if (cfg.nameserver) network.nameserver = cfg.nameserver;
  const opts: ProxmoxProviderOptions = { name, client, sshKeyDir: join(b.dataDir, 'ssh'), network };
  const storage = cfg.storage ?? b.settings.ASSIGN_STORAGE;
  if (storage) opts.storage = storage;
  if (cfg.imageStorage) opts.imageStorage = cfg.imageStorage;
  const mainNode = cfg.mainNode ?? b.settings.MAIN_NODE;
  if (mainNode) opts.mainNode = mainNode;
  if (cfg.sshPort !== undefined) opts.sshPort = cfg.sshPort;
  if (cfg.readiness) opts.readiness = cfg.readiness;
  const ready = cfg.readinessTimeoutMs ?? b.file.readinessTimeoutMs;
  if (ready !== undefined) opts.bootTimeoutMs = ready;
  if (b.file.images?.mirrors) opts.catalogue = { mirrors: b.file.images.mirrors };
  if (b.settings.VM_BALLOON_MIN !== undefined && b.settings.VM_BALLOON_MIN > 0)
    opts.balloonMinMiB = b.settings.VM_BALLOON_MIN;
  if (b.settings.VM_MAX_DISK !== undefined && b.settings.VM_MAX_DISK > 0) opts.maxDiskGiB = b.settings.VM_MAX_DISK;
  return createProxmoxProvider(opts);
}

/**
 * go-pve-qemu's VMID/IP rule for the Proxmox providers when GATEWAY is set (its reading of
 * ASSIGN_IP_START/END); a numeric id from 100 up for everything else (LXD).
 */
function allocatorFor(store: Store, providers: Provider[], settings: GoPveQemuSettings): InstallAllocator {
  const policy: AllocationPolicy = { idRange: { start: 100, end: 999_999 } };
  const proxmox = providers.filter((p) => p.type === 'proxmox').map((p) => p.name);
  if (settings.GATEWAY && proxmox.length > 0) {
    const env: Record<string, string> = { GATEWAY: settings.GATEWAY };
    if (settings.ASSIGN_IP_START !== undefined) env.ASSIGN_IP_START = String(settings.ASSIGN_IP_START);
    if (settings.ASSIGN_IP_END !== undefined) env.ASSIGN_IP_END = String(settings.ASSIGN_IP_END);
    policy.gopveqemu = { allocator: GoPveQemuAllocator.fromEnv(store.allocations, env), providers: proxmox };
  }
  return new PolicyAllocator(store.allocations, policy);
}

/**
 * Opens the store in `dataDir`, builds the providers from the config (or the local LXD daemon),
 * starts the control plane (recovering what a killed process left), listens, and prints a line
 * with its URL. SIGTERM closes the server, then the plane, then the store.
 */
export async function startServer(opts: StartOptions): Promise<StartedServer> {
  const env = opts.env ?? process.env;
  const file = await loadConfig(opts.configPath, env);
  const settings = await goPveQemuSettings(file, env, opts.cwd);
  const store = await openStore({ dataDir: opts.dataDir });
  let plane: ControlPlane | undefined;
  try {
    const providers = await buildProviders({ file, settings, dataDir: opts.dataDir });
    const planeOpts: ControlPlaneOptions = {
      store,
      providers,
      allocator: allocatorFor(store, providers, settings),
    };
    if (file.defaultProvider !== undefined) planeOpts.defaultProvider = file.defaultProvider;
    if (file.readinessTimeoutMs !== undefined) planeOpts.readyTimeoutMs = file.readinessTimeoutMs;
    if (file.installTimeoutMs !== undefined) planeOpts.installTimeoutMs = file.installTimeoutMs;
    if (file.reconcileIntervalMs !== undefined) planeOpts.reconcileIntervalMs = file.reconcileIntervalMs;
    plane = new ControlPlane(planeOpts);
    await plane.start();
    const apiAuth = env.VMPLANE_API_AUTH === 'allowlist' ? 'allowlist' : (file.server?.apiAuth ?? 'token');
    const allow = settings.ALLOW_IPS ? settings.ALLOW_IPS.split(',') : file.server?.allowIps;
    const trusted = env.VMPLANE_TRUSTED_PROXIES ? env.VMPLANE_TRUSTED_PROXIES.split(',') : file.server?.trustedProxies;
    const config: ServerConfig = {
      apiAuth,
      gopveqemu: settings,
      providerTypes: Object.fromEntries(Object.entries(file.providers).map(([n, p]) => [n, p.type])),
      ...(file.defaultProvider === undefined ? {} : { defaultProvider: file.defaultProvider }),
      logger: opts.logger ?? { level: env.VMPLANE_LOG_LEVEL ?? 'info', stream: process.stderr },
    };
    if (allow) config.allowIps = allow;
    if (trusted) config.trustedProxies = trusted;
    if (file.server?.bodyLimit) config.bodyLimit = file.server.bodyLimit;
    const app = await buildServer({ plane, store, config });
    if (apiAuth === 'allowlist')
      app.log.warn(
        'VMPLANE_API_AUTH=allowlist: the /api routes take requests without a token; only the IP allowlist guards them',
      );
    if (providers.length === 0) app.log.warn('no provider is configured and no local LXD daemon was found');
    await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
    const addresses = () =>
      (app.server.address() ? [app.server.address() as AddressInfo] : []).filter((a) => typeof a === 'object');
    const first = addresses()[0];
    const host = first ? (first.family === 'IPv6' ? `[${first.address}]` : first.address) : (opts.host ?? '127.0.0.1');
    const url = `http://${host}:${first?.port ?? opts.port}`;
    let closing: Promise<void> | undefined;
    const livePlane = plane;
    const close = () => {
      closing ??= (async () => {
        await app.close();
        await livePlane.close();
        await store.close();
      })();
      return closing;
    };
    if (opts.handleSignals !== false) {
      const onSignal = () => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        void close();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    }
    if (opts.print !== false) process.stdout.write(`vmplane server listening on ${url}\n`);
    return { url, app, plane, store, addresses, close };
  } catch (error) {
    await plane?.close().catch(() => {});
    await store.close().catch(() => {});
    throw error;
  }
}
