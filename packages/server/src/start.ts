import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { ControlPlaneApi, InstallAllocator, Provider, Store } from '@vmplane/core';
import * as core from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { type FileConfig, goPveQemuSettings, loadConfig, type ProviderConfig } from './config.js';
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

/** What a plane needs beyond the store: core's provider constructors and allocators, by name. */
type CoreModule = Record<string, unknown>;

/**
 * Builds the providers the config names from core's constructors. Proxmox waits on core's
 * provider (not in core yet): a configured one is refused at start with that reason, rather
 * than at the first request.
 */
async function buildProviders(file: FileConfig): Promise<Provider[]> {
  const mod = core as unknown as CoreModule;
  const out: Provider[] = [];
  for (const [name, cfg] of Object.entries(file.providers)) out.push(await buildProvider(mod, name, cfg));
  return out;
}

async function pem(value: string | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  return value.includes('-----BEGIN') ? value : readFile(value, 'utf8');
}

async function buildProvider(mod: CoreModule, name: string, cfg: ProviderConfig): Promise<Provider> {
  if (cfg.type === 'lxd') {
    const create = mod.createLxdProvider as ((o: Record<string, unknown>) => Provider) | undefined;
    if (typeof create !== 'function') throw new Error('this @vmplane/core has no LXD provider (createLxdProvider)');
    const client: Record<string, unknown> = {};
    if (cfg.socket) client.socketPath = cfg.socket;
    if (cfg.url) client.url = cfg.url;
    for (const k of ['cert', 'key', 'serverCert'] as const) {
      const v = await pem(cfg[k]);
      if (v !== undefined) client[k] = v;
    }
    const opts: Record<string, unknown> = { name, client };
    if (cfg.project) opts.project = cfg.project;
    return create(opts);
  }
  const create = mod.createProxmoxProvider as ((o: Record<string, unknown>) => Provider) | undefined;
  if (typeof create !== 'function') throw new Error(`provider ${name}: this @vmplane/core has no Proxmox provider yet`);
  const opts: Record<string, unknown> = { name, ...cfg };
  if (cfg.ca) opts.ca = await pem(cfg.ca);
  return create(opts);
}

function allocatorFor(store: Store, providers: Provider[], settings: GoPveQemuSettings): InstallAllocator {
  const mod = core as unknown as CoreModule;
  const Policy = mod.PolicyAllocator as (new (s: unknown, p: unknown) => InstallAllocator) | undefined;
  const GoPve = mod.GoPveQemuAllocator as (new (s: unknown, c: unknown) => unknown) | undefined;
  if (!Policy) throw new Error('this @vmplane/core exports no PolicyAllocator');
  const policy: Record<string, unknown> = { idRange: { start: 100, end: 999_999 } };
  if (settings.GATEWAY && GoPve) {
    const cfg: Record<string, unknown> = { gateway: settings.GATEWAY };
    if (settings.ASSIGN_IP_START !== undefined) cfg.ipStart = Math.max(100, settings.ASSIGN_IP_START);
    if (settings.ASSIGN_IP_END !== undefined) cfg.ipEnd = Math.min(254, settings.ASSIGN_IP_END);
    policy.gopveqemu = { allocator: new GoPve(store.allocations, cfg), providers: providers.map((p) => p.name) };
  }
  return new Policy(store.allocations, policy);
}

/**
 * Opens the store in `dataDir`, builds the providers from the config (or the local LXD daemon),
 * starts the control plane (recovering what a killed process left), listens, and prints a line
 * with its URL. SIGTERM closes the server, then the plane, then the store.
 */
export async function startServer(opts: StartOptions): Promise<StartedServer> {
  const env = opts.env ?? process.env;
  const file = await loadConfig(opts.configPath, env);
  const settings = await goPveQemuSettings(file, env);
  const store = await core.openStore({ dataDir: opts.dataDir });
  let plane: core.ControlPlane | undefined;
  try {
    const providers = await buildProviders(file);
    const planeOpts: core.ControlPlaneOptions = {
      store,
      providers,
      allocator: allocatorFor(store, providers, settings),
    };
    if (file.defaultProvider !== undefined) planeOpts.defaultProvider = file.defaultProvider;
    plane = new core.ControlPlane(planeOpts);
    await plane.start();
    const apiAuth = env.VMPLANE_API_AUTH === 'allowlist' ? 'allowlist' : (file.server?.apiAuth ?? 'token');
    const allow = settings.ALLOW_IPS ? settings.ALLOW_IPS.split(',') : file.server?.allowIps;
    const trusted = env.VMPLANE_TRUSTED_PROXIES ? env.VMPLANE_TRUSTED_PROXIES.split(',') : file.server?.trustedProxies;
    const config: ServerConfig = {
      apiAuth,
      gopveqemu: settings,
      providerTypes: Object.fromEntries(Object.entries(file.providers).map(([n, p]) => [n, p.type])),
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
