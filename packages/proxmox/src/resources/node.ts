import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { apiErrorFromStatus, type CallOptions, exchange, path, withDeadline } from '@vmplane/common';
import { type ConsoleConnection, consoleUrl, openConsoleSocket } from '../console.js';
import { BACKEND } from '../errors.js';
import type { Task } from '../task.js';
import type { ReadOptions } from '../transport.js';
import type {
  GuestStatusCommon,
  NodeNetworkInterface,
  NodeStatus,
  Storage,
  StorageContent,
  TaskSummary,
  TermProxy,
  VncProxy,
} from '../types.js';
import type { Context } from './context.js';
import type { ConfigValues } from './guest.js';
import { type CloudImageVmOptions, cloudImageVmParams, type QemuCreateOptions, qemuCreateParams } from './qemu.js';

export type StorageContentType = 'iso' | 'vztmpl' | 'import' | 'images' | 'rootdir' | 'backup' | 'snippets';

export interface UploadOptions extends CallOptions {
  content: 'iso' | 'vztmpl' | 'import';
  /** Name on the storage; defaults to the file's own name. */
  filename?: string;
  checksum?: string;
  checksumAlgorithm?: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface DownloadUrlOptions extends CallOptions {
  content: 'iso' | 'vztmpl' | 'import';
  filename: string;
  checksum?: string;
  checksumAlgorithm?: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
  compression?: string;
  verifyCertificates?: boolean;
}

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

/** `/nodes/{node}/storage/{storage}`. */
export class StorageApi {
  constructor(
    private readonly ctx: Context,
    readonly node: string,
    readonly storage: string,
  ) {}

  content(opts: ReadOptions & { content?: StorageContentType; vmid?: number } = {}): Promise<StorageContent[]> {
    return this.ctx.t.get<StorageContent[]>(path`/nodes/${this.node}/storage/${this.storage}/content`, {
      ...opts,
      params: { content: opts.content, vmid: opts.vmid },
    });
  }

  status(opts: ReadOptions = {}): Promise<Storage> {
    return this.ctx.t.get<Storage>(path`/nodes/${this.node}/storage/${this.storage}/status`, opts);
  }

  /** Lets PVE fetch a URL into the storage (an ISO, a container template, a cloud image). */
  async downloadUrl(url: string, opts: DownloadUrlOptions): Promise<Task> {
    const upid = await this.ctx.t.post<string>(path`/nodes/${this.node}/storage/${this.storage}/download-url`, {
      ...opts,
      params: {
        url,
        content: opts.content,
        filename: opts.filename,
        checksum: opts.checksum,
        'checksum-algorithm': opts.checksumAlgorithm,
        compression: opts.compression,
        'verify-certificates': opts.verifyCertificates,
      },
    });
    return this.ctx.nodeTask(upid, this.node);
  }

  /**
   * Uploads a local file (multipart/form-data, streamed from disk). PVE answers with the task that
   * moves the file into place. Never retried: the body is a stream.
   */
  async upload(file: string, opts: UploadOptions): Promise<Task> {
    const size = (await stat(file)).size;
    const filename = opts.filename ?? basename(file);
    const boundary = `----vmplane${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
    const field = (name: string, value: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    let head = field('content', opts.content);
    if (opts.checksum) head += field('checksum', opts.checksum);
    if (opts.checksumAlgorithm) head += field('checksum-algorithm', opts.checksumAlgorithm);
    head += `--${boundary}\r\nContent-Disposition: form-data; name="filename"; filename="${filename.replace(/"/g, '')}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const length = Buffer.byteLength(head) + size + Buffer.byteLength(tail);
    const t = this.ctx.t;
    const upid = await withDeadline(
      { signal: opts.signal, timeout: opts.timeout ?? 60 * 60 * 1000 },
      BACKEND,
      async (d) => {
        const auth = await t.auth.headers(true);
        const body = Readable.from(
          (async function* () {
            yield Buffer.from(head);
            yield* createReadStream(file);
            yield Buffer.from(tail);
          })(),
        );
        const headLength = Buffer.byteLength(head);
        t.stats.requests++;
        const res = await exchange({
          method: 'POST',
          url: new URL(`${t.apiUrl}${path`/nodes/${this.node}/storage/${this.storage}/upload`}`),
          headers: { ...auth, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': length },
          body,
          agent: t.agent,
          signal: d.signal,
          backend: BACKEND,
          onUploadProgress: (sent) => opts.onProgress?.(Math.max(0, Math.min(size, sent - headLength)), size),
        });
        const text = await res.text();
        const parsed = text
          ? (JSON.parse(text) as { data?: unknown; errors?: Record<string, string>; message?: string })
          : {};
        if (res.status < 200 || res.status >= 300) {
          throw apiErrorFromStatus({
            status: res.status,
            backend: BACKEND,
            message: `POST upload: ${parsed.message ?? res.statusMessage ?? `HTTP ${res.status}`}`,
            errors: parsed.errors,
            body: parsed,
          });
        }
        return String(parsed.data);
      },
    );
    return this.ctx.nodeTask(upid, this.node);
  }
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
      opts?: CallOptions,
    ) => Promise<Task>;
  };

  constructor(
    private readonly ctx: Context,
    readonly name: string,
  ) {
    const base = path`/nodes/${name}`;
    this.qemu = {
      list: (opts = {}) =>
        ctx.t.get(`${base}/qemu`, { ...opts, params: { full: opts.full }, cache: ctx.nodeCache(name) }),
      create: async (opts) => {
        const upid = await ctx.t.post<string>(`${base}/qemu`, { ...opts, params: qemuCreateParams(opts) as never });
        return ctx.guestTask(upid, name, opts.vmid);
      },
      createFromCloudImage: async (opts) => {
        const upid = await ctx.t.post<string>(`${base}/qemu`, { ...opts, params: cloudImageVmParams(opts) as never });
        return ctx.guestTask(upid, name, opts.vmid);
      },
    };
    this.lxc = {
      list: (opts = {}) => ctx.t.get(`${base}/lxc`, { ...opts, cache: ctx.nodeCache(name) }),
      create: async (vmid, ostemplate, config = {}, opts = {}) => {
        const upid = await ctx.t.post<string>(`${base}/lxc`, { ...opts, params: { ...config, vmid, ostemplate } });
        return ctx.guestTask(upid, name, vmid);
      },
    };
  }

  #p(sub: string): string {
    return `${path`/nodes/${this.name}`}${sub}`;
  }

  status(opts: ReadOptions = {}): Promise<NodeStatus> {
    return this.ctx.t.get<NodeStatus>(this.#p('/status'), { ...opts, cache: this.ctx.nodeCache(this.name) });
  }

  config(opts: ReadOptions = {}): Promise<Record<string, string | number>> {
    return this.ctx.t.get(this.#p('/config'), { ...opts, cache: this.ctx.nodeCache(this.name) });
  }

  version(opts: ReadOptions = {}): Promise<{ version: string; release: string; repoid: string }> {
    return this.ctx.t.get(this.#p('/version'), { ...opts, cache: this.ctx.nodeCache(this.name) });
  }

  network(opts: ReadOptions & { type?: string } = {}): Promise<NodeNetworkInterface[]> {
    return this.ctx.t.get(this.#p('/network'), {
      ...opts,
      params: { type: opts.type },
      cache: this.ctx.nodeCache(this.name),
    });
  }

  /** Storages this node sees, with usage. */
  storages(opts: ReadOptions & { content?: StorageContentType; enabled?: boolean } = {}): Promise<Storage[]> {
    return this.ctx.t.get(this.#p('/storage'), {
      ...opts,
      params: { content: opts.content, enabled: opts.enabled },
      cache: this.ctx.nodeCache(this.name),
    });
  }

  storage(storage: string): StorageApi {
    return new StorageApi(this.ctx, this.name, storage);
  }

  tasks(filter: NodeTaskFilter = {}): Promise<TaskSummary[]> {
    return this.ctx.t.get(this.#p('/tasks'), {
      ...filter,
      params: {
        limit: filter.limit,
        start: filter.start,
        errors: filter.errors,
        vmid: filter.vmid,
        typefilter: filter.typefilter,
        userfilter: filter.userfilter,
        source: filter.source,
        since: filter.since,
        until: filter.until,
      },
    });
  }

  /** A shell on the node through xterm.js (termproxy). */
  termProxy(opts: CallOptions & { cmd?: 'login' | 'upgrade' | 'ceph_install' } = {}): Promise<TermProxy> {
    return this.ctx.t.post(this.#p('/termproxy'), { ...opts, params: { cmd: opts.cmd } });
  }

  /** A shell on the node through noVNC (vncshell). */
  vncShell(opts: CallOptions & { websocket?: boolean; width?: number; height?: number } = {}): Promise<VncProxy> {
    return this.ctx.t.post(this.#p('/vncshell'), {
      ...opts,
      params: { websocket: opts.websocket ?? true, width: opts.width, height: opts.height },
    });
  }

  /** Opens the websocket of a shell proxy (vncshell or termproxy). */
  async shellWebSocket(proxy?: { port: number; ticket: string }, opts: CallOptions = {}): Promise<ConsoleConnection> {
    const p = proxy ?? (await this.vncShell(opts));
    return openConsoleSocket(this.ctx.t, this.#p('/vncwebsocket'), p.port, p.ticket, opts);
  }

  /** PVE's console page for this node's shell. */
  consoleUrl(opts: { xterm?: boolean; vncticket?: string } = {}): string {
    return consoleUrl(this.ctx.t.baseUrl, {
      kind: 'shell',
      node: this.name,
      xterm: opts.xterm,
      vncticket: opts.vncticket,
    });
  }

  async reboot(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.post(this.#p('/status'), { ...opts, params: { command: 'reboot' } });
  }

  async shutdown(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.post(this.#p('/status'), { ...opts, params: { command: 'shutdown' } });
  }

  /** Forgets cached reads about this node and its guests (the seed's RefreshNodeData, then read again). */
  invalidate(): void {
    this.ctx.invalidateNode(this.name);
  }
}
