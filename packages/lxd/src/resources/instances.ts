import type { Readable } from 'node:stream';
import { InvalidArgumentError, path } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstanceName } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { LxdTransport } from '../transport.js';
import type {
  Instance,
  InstanceFull,
  InstancePut,
  InstanceSnapshot,
  InstanceSource,
  InstanceState,
  InstanceStatePut,
  InstancesPost,
  Operation,
} from '../types/api.js';
import { InstanceBackups } from './backups.js';
import {
  found,
  type ListOptions,
  type LxdCallOptions,
  listQuery,
  namesFromUrls,
  Resource,
  type UpdateOptions,
} from './base.js';
import { InstanceConsole } from './console.js';
import {
  type ExecBufferedOptions,
  type ExecOptions,
  type ExecProcess,
  type ExecResult,
  InstanceExec,
  type InteractiveOptions,
} from './exec.js';
import { InstanceFiles } from './files.js';
import { InstanceLogs } from './logs.js';
import { InstanceSnapshots } from './snapshots.js';

export type StateAction = 'start' | 'stop' | 'restart' | 'freeze' | 'unfreeze';
const ACTIONS: readonly StateAction[] = ['start', 'stop', 'restart', 'freeze', 'unfreeze'];

export interface StateOptions extends LxdCallOptions {
  /** Seconds LXD waits for a clean shutdown before giving up (stop/restart). */
  stopTimeout?: number;
  force?: boolean;
  stateful?: boolean;
}

/** What `create` takes: the instance's name plus any of InstancesPost. */
export type InstanceCreate = InstancesPost & { name: string };

/** Where a new instance's image comes from. */
export interface ImageSourceRef {
  alias?: string;
  fingerprint?: string;
  /** Another server: an LXD URL or a SimpleStreams URL. */
  server?: string;
  protocol?: 'lxd' | 'simplestreams';
  /** Secret for a private image on another LXD server. */
  secret?: string;
  /** PEM certificate of the other server, when it is not publicly trusted. */
  certificate?: string;
}

export interface CopyOptions extends LxdCallOptions {
  /** Copy without snapshots. */
  instanceOnly?: boolean;
  stateful?: boolean;
  config?: Record<string, string>;
  profiles?: string[];
}

/** Instances (containers and VMs) over the modern /1.0/instances API. */
export class Instances extends Resource {
  readonly files: InstanceFiles;
  readonly snapshots: InstanceSnapshots;
  readonly backups: InstanceBackups;
  readonly logs: InstanceLogs;
  readonly console: InstanceConsole;
  private readonly execs: InstanceExec;

  constructor(transport: LxdTransport) {
    super(transport);
    this.files = new InstanceFiles(transport);
    this.snapshots = new InstanceSnapshots(transport);
    this.backups = new InstanceBackups(transport);
    this.logs = new InstanceLogs(transport);
    this.console = new InstanceConsole(transport);
    this.execs = new InstanceExec(transport);
  }

  private item(name: string): string {
    return path`/1.0/instances/${checkInstanceName(name)}`;
  }

  private scope(opts: ListOptions): LxdCallOptions {
    return opts.allProjects ? { ...opts, project: undefined } : opts;
  }

  /** Names only. */
  async names(opts: ListOptions & { type?: 'container' | 'virtual-machine' } = {}): Promise<string[]> {
    const urls = await this.call<string[]>('GET', '/1.0/instances', {
      ...this.scope(opts),
      query: { ...listQuery(opts, 0), 'instance-type': opts.type },
    });
    return namesFromUrls(urls);
  }

  /** Instances with their configuration (recursion=1). */
  async list(opts: ListOptions & { type?: 'container' | 'virtual-machine' } = {}): Promise<Instance[]> {
    return this.call('GET', '/1.0/instances', {
      ...this.scope(opts),
      query: { ...listQuery(opts, 1), 'instance-type': opts.type },
    });
  }

  /** Instances with state, snapshots and backups in one call (recursion=2). */
  async listFull(opts: ListOptions & { type?: 'container' | 'virtual-machine' } = {}): Promise<InstanceFull[]> {
    return this.call('GET', '/1.0/instances', {
      ...this.scope(opts),
      query: { ...listQuery(opts, 2), 'instance-type': opts.type },
    });
  }

  /** One instance; `etagOf(result)` gives the ETag for a later update. */
  async get(name: string, opts: LxdCallOptions = {}): Promise<Instance> {
    return this.read<Instance>(this.item(name), opts);
  }

  /** One instance with state, snapshots and backups. */
  async getFull(name: string, opts: LxdCallOptions = {}): Promise<InstanceFull> {
    return this.read<InstanceFull>(this.item(name), { ...opts, query: { recursion: 1 } });
  }

  exists(name: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return found(this.get(name, opts));
  }

  /** Creates an instance; the operation's wait() resolves when it exists (stopped, unless `start`). */
  async create(req: InstanceCreate, opts: LxdCallOptions = {}): Promise<LxdOperation> {
    checkInstanceName(req.name);
    return this.operation('POST', '/1.0/instances', { ...opts, body: { source: { type: 'none' }, ...req } });
  }

  /** Creates an instance from an image on this server or another (LXD or SimpleStreams). */
  createFromImage(
    name: string,
    image: ImageSourceRef,
    extra: Omit<InstanceCreate, 'name' | 'source'> = {},
    opts: LxdCallOptions = {},
  ): Promise<LxdOperation> {
    if (!image.alias && !image.fingerprint) {
      throw new InvalidArgumentError({
        message: 'image needs an alias or a fingerprint',
        argument: 'image',
        backend: BACKEND,
      });
    }
    const source: InstanceSource = { type: 'image', ...image };
    if (image.server) source.mode = 'pull';
    return this.create({ ...extra, name, source }, opts);
  }

  /**
   * Copies an instance, or a snapshot (`source` = `name/snapshot`), to a new instance. As the Go
   * client does, the source's architecture, config, devices and profiles travel with the request
   * (LXD does not fill them in for snapshot copies).
   */
  async copy(source: string, name: string, opts: CopyOptions = {}): Promise<LxdOperation> {
    const [instance, snapshot, ...rest] = source.split('/');
    checkInstanceName(instance, 'source');
    checkInstanceName(name);
    if (rest.length > 0 || snapshot === '') {
      throw new InvalidArgumentError({
        message: `Invalid copy source ${JSON.stringify(source)}`,
        argument: 'source',
        backend: BACKEND,
      });
    }
    const { instanceOnly, stateful, config, profiles, ...callOpts } = opts;
    const from: Instance | InstanceSnapshot =
      snapshot === undefined
        ? await this.get(instance as string, callOpts)
        : await this.snapshots.get(instance as string, snapshot, callOpts);
    const req: InstanceCreate = {
      name,
      architecture: from.architecture,
      config: { ...from.config, ...config },
      devices: from.devices,
      ephemeral: from.ephemeral,
      profiles: profiles ?? from.profiles,
      source: { type: 'copy', source, instance_only: instanceOnly ?? false, live: stateful ?? false },
    };
    // Volatile keys name the source's MACs and idmaps; LXD regenerates them for the copy.
    for (const key of Object.keys(req.config ?? {})) if (key.startsWith('volatile.')) delete req.config?.[key];
    return this.create(req, callOpts);
  }

  /** Replaces the writable fields; with `etag`, fails with 412 if the instance changed since it was read. */
  async update(name: string, put: InstancePut, opts: UpdateOptions = {}): Promise<void> {
    await this.operationDone('PUT', this.item(name), { ...opts, body: put });
  }

  /** Merges the given fields (config keys, devices) into the instance. */
  async patch(name: string, put: Partial<InstancePut>, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PATCH', this.item(name), { ...opts, body: put });
  }

  async rename(name: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkInstanceName(newName, 'newName');
    await this.operationDone('POST', this.item(name), { ...opts, body: { name: newName } });
  }

  /** Deletes the instance; with `force`, stops it first if it runs. */
  async delete(name: string, opts: LxdCallOptions & { force?: boolean } = {}): Promise<void> {
    const { force, ...rest } = opts;
    if (force) {
      // The instance itself carries its status: GET .../state would make LXD collect network,
      // disk and cgroup figures of a running instance (~40 ms) only to read one field.
      const instance = await this.get(name, rest);
      if (instance.status !== 'Stopped') await this.stop(name, { ...rest, force: true });
    }
    await this.operationDone('DELETE', this.item(name), rest);
  }

  async state(name: string, opts: LxdCallOptions = {}): Promise<InstanceState> {
    return this.call('GET', `${this.item(name)}/state`, opts);
  }

  /** Changes the power state; returns the operation unwaited. */
  async setState(name: string, action: StateAction, opts: StateOptions = {}): Promise<LxdOperation> {
    if (!ACTIONS.includes(action)) {
      return Promise.reject(
        new InvalidArgumentError({
          message: `Unknown state action ${JSON.stringify(action)}; use ${ACTIONS.join(', ')}`,
          argument: 'action',
          backend: BACKEND,
        }),
      );
    }
    const { stopTimeout, force, stateful, ...rest } = opts;
    const body: InstanceStatePut = {
      action,
      timeout: stopTimeout ?? -1,
      force: force ?? false,
      stateful: stateful ?? false,
    };
    return this.operation('PUT', `${this.item(name)}/state`, { ...rest, body });
  }

  private async changeState(name: string, action: StateAction, opts: StateOptions): Promise<Operation> {
    const op = await this.setState(name, action, opts);
    return op.wait({ signal: opts.signal });
  }

  async start(name: string, opts: StateOptions = {}): Promise<void> {
    await this.changeState(name, 'start', opts);
  }
  async stop(name: string, opts: StateOptions = {}): Promise<void> {
    await this.changeState(name, 'stop', opts);
  }
  async restart(name: string, opts: StateOptions = {}): Promise<void> {
    await this.changeState(name, 'restart', opts);
  }
  async freeze(name: string, opts: StateOptions = {}): Promise<void> {
    await this.changeState(name, 'freeze', opts);
  }
  async unfreeze(name: string, opts: StateOptions = {}): Promise<void> {
    await this.changeState(name, 'unfreeze', opts);
  }

  /** Runs a command to the end: `{ exitCode, stdout, stderr }` with Buffers. */
  async exec(name: string, opts: ExecBufferedOptions): Promise<ExecResult> {
    return this.execs.run(name, opts);
  }

  /** Starts a command with Node streams for stdin/stdout/stderr. */
  async spawn(name: string, opts: ExecOptions): Promise<ExecProcess> {
    return this.execs.spawn(name, opts);
  }

  /** Starts a command on a PTY with resize and signals. */
  async execInteractive(name: string, opts: InteractiveOptions): Promise<ExecProcess> {
    return this.execs.interactive(name, opts);
  }

  /** Runs a command with LXD recording its output (no websockets). */
  async execRecorded(name: string, opts: ExecOptions): Promise<ExecResult> {
    return this.execs.recorded(name, opts);
  }

  /**
   * Creates an instance from a backup tarball (`lxc import`). The name inside the backup is used
   * unless `name` is given.
   */
  importBackup(
    backup: Buffer | Readable,
    opts: LxdCallOptions & { name?: string; pool?: string } = {},
  ): Promise<LxdOperation> {
    const { name, pool, ...rest } = opts;
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (name) headers['X-LXD-name'] = checkInstanceName(name);
    if (pool) headers['X-LXD-pool'] = pool;
    return this.operation('POST', '/1.0/instances', { ...rest, headers, rawBody: backup });
  }
}
