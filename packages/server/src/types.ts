import type { ControlPlaneApi, Store, TokenRecord, TokenScope } from '@vmplane/core';

/** go-pve-qemu's own settings, by its names (from the environment, `.env` or the config's `gopveqemu:`). */
export interface GoPveQemuSettings {
  PORT?: string;
  GATEWAY?: string;
  MAIN_NODE?: string;
  /** `NODE_<name>` entries, by node name. */
  nodes?: Record<string, string>;
  ASSIGN_STORAGE?: string;
  ASSIGN_IP_START?: number;
  ASSIGN_IP_END?: number;
  ALLOW_IPS?: string;
  VM_MAX_CPU?: number;
  VM_MAX_RAM?: number;
  VM_MAX_DISK?: number;
  VM_BALLOON_MIN?: number;
  /** A secret: passed to the plane, never logged or served. */
  VM_ROOT_PASSWORD?: string;
}

/** What `buildServer` needs to know beyond the plane and the store. */
export interface ServerConfig {
  /**
   * `token` (the default): every route but the health checks and `/openapi.json` needs a bearer
   * token. `allowlist`: go-pve-qemu's `/api` routes also work without one (only the IP allowlist
   * guards them), as its clients send none.
   */
  apiAuth?: 'token' | 'allowlist';
  /** Client addresses allowed on every route: IPs or CIDRs; `0.0.0.0` allows all. Absent: all. */
  allowIps?: readonly string[];
  /** Proxies whose `X-Forwarded-For` is believed (IPs or CIDRs). Absent: none, the header is ignored. */
  trustedProxies?: readonly string[];
  /** Largest request body in bytes (default 256 KiB). */
  bodyLimit?: number;
  gopveqemu?: GoPveQemuSettings;
  /** Milliseconds between SSE heartbeat comments (default 15 s). */
  heartbeatMs?: number;
  /** Provider name to type, to pick image spellings (`debian-12` vs `debian/12`); else asked of the plane. */
  providerTypes?: Record<string, string>;
  /** The provider a request without `provider` goes to (the plane's default); else the first of providerTypes. */
  defaultProvider?: string;
  /** Fastify's logger: false (default), true, or pino options (a `stream` lets tests read the lines). */
  logger?: boolean | { level?: string; stream?: NodeJS.WritableStream };
}

export interface BuildOptions {
  plane: ControlPlaneApi;
  /** Defaults to `plane.store`. */
  store?: Store;
  config?: ServerConfig;
}

/** Per-route access rule, set in each route's `config.access`. */
export interface RouteAccess {
  /** `none`: no token needed (health checks). */
  scope: TokenScope | 'none';
  /** How errors are rendered: go-pve-qemu's text answers or hypeman's `{code, message}`. */
  flavour: 'gopveqemu' | 'hypeman';
}

/** One registered route. */
export interface RouteEntry {
  method: string;
  url: string;
  access: RouteAccess | undefined;
  websocket: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route this server registered, with its access rule. */
    vmplaneRoutes: readonly RouteEntry[];
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The token the request came with, once verified. */
    token?: TokenRecord;
  }
}
