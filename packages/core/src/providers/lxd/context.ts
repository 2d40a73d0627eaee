import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type CallOptions, callOptions } from '@vmplane/common';
import { LxdClient, type LxdConnectOptions } from '@vmplane/lxd';
import { InvalidRequestError } from '../../errors.js';
import type { LxdRef } from '../../model/instance.js';
import type { UsedResources } from '../provider.js';

/** An image server install may pull from: `<remote>:<alias>` in InstallSpec.image names it. */
export interface LxdImageServer {
  url: string;
  protocol: 'simplestreams' | 'lxd';
  /** PEM of the server's certificate when no CA the daemon trusts signed it. */
  certificate?: string;
}

/**
 * Hands out one free IPv4 address of the bridge's subnet: core's `CidrPool` (or any AddressPool,
 * `allocate({ owner, used }) → { ipv4 }`), or a plain function. `owner` is the install's
 * operation id, so core's release of the operation's allocations frees it on undo.
 */
export type Ipv4Allocator =
  | { allocate(req: { owner: string; used?: UsedResources }): Promise<{ ipv4: string }> }
  | ((req: { owner: string; name: string; used: UsedResources }) => Promise<string> | string);

export interface LxdNetworkOptions {
  /**
   * A managed LXD bridge: new instances get an `eth0` nic on it. With an address (core's
   * allocation in InstallState.ipv4, or `pool`) it is static (`ipv4.address`); without, the
   * bridge's DHCP gives one.
   */
  bridge: string;
  pool?: Ipv4Allocator;
}

export interface LxdProviderOptions {
  /** The configured name (`lxd`, `lab`). */
  name: string;
  /** A client (not closed by the provider) or how to connect one (closed by `close()`). */
  client?: LxdClient | LxdConnectOptions;
  /** The LXD project guests live in (default `default`). */
  project?: string;
  network?: LxdNetworkOptions;
  /** Image servers by remote name, for `<remote>:<alias>` images. */
  imageServers?: Record<string, LxdImageServer>;
  /** Where an image reference without a remote is looked for when it is not local (a key of imageServers). */
  defaultImageServer?: string;
  /** Profiles new instances get (default `['default']`); their root disk names the storage pool. */
  profiles?: readonly string[];
  /** The pool of the root disk, instead of the one the profiles name. */
  storagePool?: string;
  /**
   * Whether stateful stop/start (CRIU) works. Default: detected, true only when the daemon is on
   * this machine (unix socket) and a `criu` binary is on the PATH. LXD 5.0 reports no CRIU
   * support of its own, and a stateful stop that fails leaves the guest running, so guessing
   * "yes" would break standby half-way.
   */
  criu?: boolean;
  /** How long `waiting for ready` waits when the operation's own deadline is later (default 5 min). */
  readinessTimeoutMs?: number;
  /** Bound on long backend steps (image download, create, start, copy) (default 10 min). */
  longStepTimeoutMs?: number;
  /** Seconds LXD gives a clean shutdown before it reports failure (default 30). */
  stopTimeoutSeconds?: number;
  /** How long `finalizing` waits for a static address to show on the guest's interface (default 30 s). */
  addressWaitMs?: number;
}

export const DEFAULTS = {
  project: 'default',
  readinessTimeoutMs: 5 * 60_000,
  longStepTimeoutMs: 10 * 60_000,
  stopTimeoutSeconds: 30,
  addressWaitMs: 30_000,
} as const;

/** What every part of the provider shares: the connection, the project, the options. */
export class LxdContext {
  readonly name: string;
  readonly project: string;
  readonly options: LxdProviderOptions;
  readonly criu: boolean;
  readonly #given: LxdClient | undefined;
  #connecting: Promise<LxdClient> | undefined;
  #connected: LxdClient | undefined;
  #scoped: LxdClient | undefined;
  #clustered: boolean | undefined;

  constructor(options: LxdProviderOptions) {
    if (typeof options?.name !== 'string' || options.name === '') {
      throw new InvalidRequestError({ message: 'an LXD provider needs a name', field: 'name' });
    }
    this.name = options.name;
    this.options = options;
    this.project = options.project ?? DEFAULTS.project;
    this.#given = options.client instanceof LxdClient ? options.client : undefined;
    const local = this.#given ? this.#given.transport.socketPath !== undefined : !isRemote(options.client);
    this.criu = options.criu ?? (local && onPath('criu'));
    if (this.#given) this.#connected = this.#given;
  }

  /** The client scoped to the provider's project, connecting on first use (and again after a failure). */
  async client(opts: CallOptions = {}): Promise<LxdClient> {
    if (this.#scoped) return this.#scoped;
    const base = await this.#base(opts);
    this.#clustered = base.serverInfo?.environment?.server_clustered ?? this.#clustered;
    this.#scoped = base.withProject(this.project);
    return this.#scoped;
  }

  /** The unscoped client (server-wide calls: resources, cluster, server info). */
  async #base(opts: CallOptions): Promise<LxdClient> {
    if (this.#connected) return this.#connected;
    this.#connecting ??= LxdClient.connect({
      ...(isConnectOptions(this.options.client) ? this.options.client : {}),
      ...callOptions(opts),
    }).then(
      (client) => {
        this.#connected = client;
        return client;
      },
      (error: unknown) => {
        this.#connecting = undefined;
        throw error;
      },
    );
    return this.#connecting;
  }

  async server(opts: CallOptions = {}): Promise<LxdClient> {
    await this.client(opts);
    return this.#connected as LxdClient;
  }

  /** Whether the daemon is a cluster member; known once connected (false before). */
  get clustered(): boolean {
    return this.#clustered === true;
  }

  async isClustered(opts: CallOptions = {}): Promise<boolean> {
    const base = await this.server(opts);
    if (base.serverInfo === undefined) await base.refreshServer(opts);
    this.#clustered = base.serverInfo?.environment?.server_clustered === true;
    return this.#clustered;
  }

  /** An LXD ref of this provider (the type checked, the project ours). */
  ref(ref: { type: string; project?: string; name?: string }): LxdRef {
    if (ref?.type !== 'lxd' || typeof ref.name !== 'string' || ref.name === '') {
      throw new InvalidRequestError({ message: `provider ${this.name} takes LXD refs`, field: 'ref' });
    }
    if (ref.project !== undefined && ref.project !== this.project) {
      throw new InvalidRequestError({
        message: `provider ${this.name} manages project ${this.project}, not ${ref.project}`,
        field: 'ref',
      });
    }
    return ref as LxdRef;
  }

  /** Long steps are bounded by the caller's signal and our own cap, never by the client's 30 s default. */
  long(signal: AbortSignal | undefined): CallOptions {
    const out: CallOptions = { timeout: this.options.longStepTimeoutMs ?? DEFAULTS.longStepTimeoutMs };
    if (signal) out.signal = signal;
    return out;
  }

  /** Closes the connection the provider made itself; a client it was given stays open. */
  close(): void {
    if (!this.#given) this.#connected?.close();
    this.#connected = this.#given;
    this.#scoped = undefined;
    this.#connecting = undefined;
  }
}

function isConnectOptions(value: LxdProviderOptions['client']): value is LxdConnectOptions {
  return typeof value === 'object' && value !== null && !(value instanceof LxdClient);
}

function isRemote(value: LxdProviderOptions['client']): boolean {
  return isConnectOptions(value) && typeof value.url === 'string' && value.url !== '';
}

function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}
