import { type CallOptions, path } from '@vmplane/common';
import { type ConsoleConnection, consoleUrl, openConsoleSocket } from '../console.js';
import {
  checkNode,
  checkText,
  checkVmid,
  checkVolumeId,
  optionalEnum,
  optionalInteger,
  optionalPool,
  optionalVmid,
} from '../ids.js';
import { callOptions, options, readOptions } from '../options.js';
import type { Task } from '../task.js';
import type { ReadOptions } from '../transport.js';
import type {
  GuestStatusCommon,
  NodeNetworkInterface,
  NodeStatus,
  Storage,
  TaskSummary,
  TermProxy,
  VncProxy,
} from '../types.js';
import type { Context } from './context.js';
import { type ConfigValues, configValues } from './guest.js';
import { type CloudImageVmOptions, cloudImageVmParams, type QemuCreateOptions, qemuCreateParams } from './qemu.js';
import { CONTENT_TYPES, StorageApi, type StorageContentType } from './storage.js';

export type { DownloadUrlOptions, StorageContentType, UploadOptions } from './storage.js';
export { StorageApi } from './storage.js';

export interface NodeTaskFilter extends CallOptions {
  limit?: number;
  start?: number;
  errors?: boolean;
  vmid?: number;
  typefilter?: string;
  userfilter?: string;
  source?: 'archive' | 'active' | 'all';
  since?: number;
  until?: number;
}

/** One node: `/nodes/{node}`. */
export class NodeApi {
  readonly qemu: {
    list: (opts?: ReadOptions & { full?: boolean }) => Promise<GuestStatusCommon[]>;
    /** Creates a VM (`POST /nodes/{node}/qemu`). */
    create: (opts: QemuCreateOptions) => Promise<Task>;
    /** Creates a VM booting a cloud image imported with `import-from`, with cloud-init set up. */
    createFromCloudImage: (opts: CloudImageVmOptions) => Promise<Task>;
  };
  readonly lxc: {
    list: (opts?: ReadOptions) => Promise<GuestStatusCommon[]>;
    /** Creates a container from an OS template (`POST /nodes/{node}/lxc`). */
    create: (
      vmid: number,
      ostemplate: string,
      config?: ConfigValues & { password?: string },
      opts?: CallOptions & { pool?: string },
    ) => Promise<Task>;
  };
  readonly name: string;
  readonly #ctx: Context;

  /** Throws InvalidArgumentError (backend 'proxmox') for a name PVE would refuse. */
  constructor(ctx: Context, name: string) {
    this.#ctx = ctx;
    this.name = checkNode(name);
    const base = path`/nodes/${this.name}`;
    const node = this.name;
    // Both ways of creating a VM post to the same path; only the parameters differ.
    const createQemu = async <T extends QemuCreateOptions | CloudImageVmOptions>(
      opts: T,
      toParams: (opts: T) => Record<string, unknown>,
    ): Promise<Task> => {
      opts = options(opts);
      const vmid = checkVmid(opts.vmid);
      optionalPool(opts.pool);
      const params = toParams(opts) as never;
      const upid = await ctx.t.post<string>(`${base}/qemu`, { ...callOptions(opts), params });
      return ctx.guestTask(upid, node, vmid);
    };
    this.qemu = {
      list: async (opts = {}) => {
        opts = options(opts);
        return ctx.t.get(`${base}/qemu`, {
          ...readOptions(opts),
          params: { full: opts.full },
          cache: ctx.nodeCache(node),
        });
      },
      create: (opts) => createQemu(opts, qemuCreateParams),
      createFromCloudImage: (opts) => createQemu(opts, cloudImageVmParams),
    };
    this.lxc = {
      list: async (opts = {}) => ctx.t.get(`${base}/lxc`, { ...readOptions(opts), cache: ctx.nodeCache(node) }),
      create: async (vmid, ostemplate, config = {}, opts = {}) => {
        opts = options(opts);
        const id = checkVmid(vmid);
        const template = checkVolumeId(ostemplate, 'ostemplate');
        const params = {
          ...configValues(config, 'config'),
          vmid: id,
          ostemplate: template,
          pool: optionalPool(opts.pool),
        };
        const upid = await ctx.t.post<string>(`${base}/lxc`, { ...callOptions(opts), params });
        return ctx.guestTask(upid, node, id);
      },
    };
  }

  #p(sub: string): string {
    return `${path`/nodes/${this.name}`}${sub}`;
  }

  #read(opts: ReadOptions | undefined) {
    return { ...readOptions(opts), cache: this.#ctx.nodeCache(this.name) };
  }

  async status(opts: ReadOptions = {}): Promise<NodeStatus> {
    return this.#ctx.t.get<NodeStatus>(this.#p('/status'), this.#read(opts));
  }

  async config(opts: ReadOptions = {}): Promise<Record<string, string | number>> {
    return this.#ctx.t.get(this.#p('/config'), this.#read(opts));
  }

  async version(opts: ReadOptions = {}): Promise<{ version: string; release: string; repoid: string }> {
    return this.#ctx.t.get(this.#p('/version'), this.#read(opts));
  }

  async network(opts: ReadOptions & { type?: string } = {}): Promise<NodeNetworkInterface[]> {
    opts = options(opts);
    // The list of interface types grows with PVE versions: PVE itself checks the word.
    const type = opts.type === undefined ? undefined : checkText(opts.type, 'type', 32);
    return this.#ctx.t.get(this.#p('/network'), { ...this.#read(opts), params: { type } });
  }

  /** Storages this node sees, with usage. */
  async storages(opts: ReadOptions & { content?: StorageContentType; enabled?: boolean } = {}): Promise<Storage[]> {
    opts = options(opts);
    const content = optionalEnum(opts.content, CONTENT_TYPES, 'content');
    return this.#ctx.t.get(this.#p('/storage'), { ...this.#read(opts), params: { content, enabled: opts.enabled } });
  }

  /** One storage of this node; throws InvalidArgumentError for an id PVE would refuse. */
  storage(storage: string): StorageApi {
    return new StorageApi(this.#ctx, this.name, storage);
  }

  async tasks(filter: NodeTaskFilter = {}): Promise<TaskSummary[]> {
    filter = options(filter);
    const params = {
      limit: optionalInteger(filter.limit, 'limit'),
      start: optionalInteger(filter.start, 'start'),
      errors: filter.errors,
      vmid: optionalVmid(filter.vmid),
      typefilter: filter.typefilter,
      userfilter: filter.userfilter,
      source: optionalEnum(filter.source, ['archive', 'active', 'all'], 'source'),
      since: optionalInteger(filter.since, 'since'),
      until: optionalInteger(filter.until, 'until'),
    };
    return this.#ctx.t.get(this.#p('/tasks'), { ...callOptions(filter), params });
  }

  /** A shell on the node through xterm.js (termproxy). */
  async termProxy(opts: CallOptions & { cmd?: 'login' | 'upgrade' | 'ceph_install' } = {}): Promise<TermProxy> {
    opts = options(opts);
    const cmd = optionalEnum(opts.cmd, ['login', 'upgrade', 'ceph_install'], 'cmd');
    return this.#ctx.t.post(this.#p('/termproxy'), { ...callOptions(opts), params: { cmd } });
  }

  /** A shell on the node through noVNC (vncshell). */
  async vncShell(opts: CallOptions & { websocket?: boolean; width?: number; height?: number } = {}): Promise<VncProxy> {
    opts = options(opts);
    const params = {
      websocket: opts.websocket ?? true,
      width: optionalInteger(opts.width, 'width', 16, 4096),
      height: optionalInteger(opts.height, 'height', 16, 2160),
    };
    return this.#ctx.t.post(this.#p('/vncshell'), { ...callOptions(opts), params });
  }

  /** Opens the websocket of a shell proxy (vncshell or termproxy). */
  async shellWebSocket(proxy?: { port: number; ticket: string }, opts: CallOptions = {}): Promise<ConsoleConnection> {
    const p = proxy ?? (await this.vncShell(callOptions(opts)));
    return openConsoleSocket(this.#ctx.t, this.#p('/vncwebsocket'), p.port, p.ticket, callOptions(opts));
  }

  /** PVE's console page for this node's shell. */
  consoleUrl(opts: { xterm?: boolean; vncticket?: string } = {}): string {
    opts = options(opts);
    return consoleUrl(this.#ctx.t.baseUrl, {
      kind: 'shell',
      node: this.name,
      xterm: opts.xterm,
      vncticket: opts.vncticket,
    });
  }

  async reboot(opts: CallOptions = {}): Promise<void> {
    await this.#ctx.t.post(this.#p('/status'), { ...callOptions(opts), params: { command: 'reboot' } });
  }

  async shutdown(opts: CallOptions = {}): Promise<void> {
    await this.#ctx.t.post(this.#p('/status'), { ...callOptions(opts), params: { command: 'shutdown' } });
  }

  /** Forgets cached reads about this node and its guests (the seed's RefreshNodeData, then read again). */
  invalidate(): void {
    this.#ctx.invalidateNode(this.name);
  }
}
