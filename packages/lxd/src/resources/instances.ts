import type { Readable } from 'node:stream';
import { callOptions, InvalidArgumentError, path, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstanceName, checkStoragePoolName, listEncodingOf, namesFromUrls } from '../names.js';
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
  checkContent,
  found,
  type ListOptions,
  type LxdCallOptions,
  listParts,
  type RequestParts,
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

  /** Names only. */
  async names(opts: InstanceListOptions = {}): Promise<string[]> {
    return namesFromUrls(
      await this.call<string[]>('GET', '/1.0/instances', opts, instanceList(opts, 0)),
      listEncodingOf('instance'),
    );
  }

  /** Instances with their configuration (recursion=1). */
  async list(opts: InstanceListOptions = {}): Promise<Instance[]> {
    return this.call('GET', '/1.0/instances', opts, instanceList(opts, 1));
  }

  /** Instances with state, snapshots and backups in one call (recursion=2). */
  async listFull(opts: InstanceListOptions = {}): Promise<InstanceFull[]> {
    return this.call('GET', '/1.0/instances', opts, instanceList(opts, 2));
  }

  /** One instance; `etagOf(result)` gives the ETag for a later update. */
  async get(name: string, opts: LxdCallOptions = {}): Promise<Instance> {
    return this.read<Instance>(this.item(name), opts, {});
  }

  /** One instance with state, snapshots and backups. */
  async getFull(name: string, opts: LxdCallOptions = {}): Promise<InstanceFull> {
    return this.read<InstanceFull>(this.item(name), opts, { query: { recursion: 1 } });
  }

  async exists(name: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return found(this.get(name, opts));
  }

  /** Creates an instance; the operation's wait() resolves when it exists (stopped, unless `start`). */
  async create(req: InstanceCreate, opts: LxdCallOptions = {}): Promise<LxdOperation> {
    if (typeof req !== 'object' || req === null) {
      throw new InvalidArgumentError({ message: 'create takes an object', argument: 'req', backend: BACKEND });
    }
    checkInstanceName(req.name);
    return this.operation('POST', '/1.0/instances', opts, { body: { source: { type: 'none' }, ...req } });
  }

  /** Creates an instance from an image on this server or another (LXD or SimpleStreams). */
  async createFromImage(
    name: string,
    image: ImageSourceRef,
    extra: Omit<InstanceCreate, 'name' | 'source'> = {},
    opts: LxdCallOptions = {},
  ): Promise<LxdOperation> {
    if (typeof image !== 'object' || image === null || (!image.alias && !image.fingerprint)) {
      throw new InvalidArgumentError({
        message: 'image needs an alias or a fingerprint',
        argument: 'image',
        backend: BACKEND,
      });
    }
    const source: InstanceSource = { type: 'image' };
    for (const key of ['alias', 'fingerprint', 'server', 'protocol', 'secret', 'certificate'] as const) {
      const value = image[key];
      if (value === undefined) continue;
      if (typeof value !== 'string') {
        throw new InvalidArgumentError({
          message: `image.${key} must be a string`,
          argument: 'image',
          backend: BACKEND,
        });
      }
      source[key] = value;
    }
    if (image.server) source.mode = 'pull';
    return this.create({ ...extra, name, source }, opts);
  }

  /**
   * Copies an instance, or a snapshot (`source` = `name/snapshot`), to a new instance. As the Go
   * client does, the source's architecture, config, devices and profiles travel with the request
   * (LXD does not fill them in for snapshot copies).
   */
  async copy(source: string, name: string, opts: CopyOptions = {}): Promise<LxdOperation> {
    const [instance, snapshot, ...rest] = typeof source === 'string' ? source.split('/') : [];
    checkInstanceName(instance, 'source');
    checkInstanceName(name);
    if (rest.length > 0 || snapshot === '') {
      throw new InvalidArgumentError({
        message: `Invalid copy source ${JSON.stringify(source)}`,
        argument: 'source',
        backend: BACKEND,
      });
    }
    const { instanceOnly, stateful, config, profiles } = opts;
    return withDeadline(callOptions(opts), BACKEND, async (d) => {
      const callOpts = { ...scopeOf(opts), signal: d.signal };
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
    });
  }

  /** Replaces the writable fields; with `etag`, fails with 412 if the instance changed since it was read. */
  async update(name: string, put: InstancePut, opts: UpdateOptions = {}): Promise<void> {
    await this.operationDone('PUT', this.item(name), opts, { body: put, etag: opts?.etag });
  }

  /** Merges the given fields (config keys, devices) into the instance. */
  async patch(name: string, put: Partial<InstancePut>, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PATCH', this.item(name), opts, { body: put, etag: opts?.etag });
  }

  async rename(name: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkInstanceName(newName, 'newName');
    await this.operationDone('POST', this.item(name), opts, { body: { name: newName } });
  }

  /** Deletes the instance; with `force`, stops it first if it runs. The deadline covers all of it. */
  async delete(name: string, opts: LxdCallOptions & { force?: boolean } = {}): Promise<void> {
    const item = this.item(name);
    await withDeadline(callOptions(opts), BACKEND, async (d) => {
      const call = { ...scopeOf(opts), signal: d.signal };
      if (opts.force) {
        // The instance itself carries its status: GET .../state would make LXD collect network,
        // disk and cgroup figures of a running instance (~40 ms) only to read one field.
        const instance = await this.get(name, call);
        if (instance.status !== 'Stopped') await this.stop(name, { ...call, force: true });
      }
      await this.operationDone('DELETE', item, call, {});
    });
  }

  async state(name: string, opts: LxdCallOptions = {}): Promise<InstanceState> {
    return this.call('GET', `${this.item(name)}/state`, opts, {});
  }

  /** Changes the power state; returns the operation unwaited. */
  async setState(name: string, action: StateAction, opts: StateOptions = {}): Promise<LxdOperation> {
    return this.operation('PUT', `${this.item(name)}/state`, opts, { body: stateBody(action, opts) });
  }

  /** A state change waited for: the caller's deadline covers the request and the wait. */
  private async changeState(name: string, action: StateAction, opts: StateOptions): Promise<Operation> {
    return this.operationDone('PUT', `${this.item(name)}/state`, opts, { body: stateBody(action, opts) });
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
  async importBackup(
    backup: Buffer | Uint8Array | ArrayBuffer | Readable,
    opts: LxdCallOptions & { name?: string; pool?: string } = {},
  ): Promise<LxdOperation> {
    const rawBody = checkContent(backup, 'backup', { text: false });
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (opts?.name !== undefined) headers['X-LXD-name'] = checkInstanceName(opts.name);
    if (opts?.pool !== undefined) headers['X-LXD-pool'] = checkStoragePoolName(opts.pool);
    return this.operation('POST', '/1.0/instances', opts, { headers, rawBody });
  }
}

export type InstanceListOptions = ListOptions & { type?: 'container' | 'virtual-machine' };

function instanceList(opts: InstanceListOptions, recursion: number): RequestParts {
  return listParts(opts, recursion, { 'instance-type': opts?.type });
}

/** The caller's signal, timeout and project, and nothing else of its bag. */
function scopeOf(opts: LxdCallOptions): LxdCallOptions {
  const out: LxdCallOptions = callOptions(opts);
  if (opts?.project !== undefined) out.project = opts.project;
  return out;
}

function stateBody(action: StateAction, opts: StateOptions): InstanceStatePut {
  if (!ACTIONS.includes(action)) {
    throw new InvalidArgumentError({
      message: `Unknown state action ${JSON.stringify(action)}; use ${ACTIONS.join(', ')}`,
      argument: 'action',
      backend: BACKEND,
    });
  }
  const { stopTimeout, force, stateful } = opts ?? {};
  if (stopTimeout !== undefined && !Number.isInteger(stopTimeout)) {
    throw new InvalidArgumentError({
      message: 'stopTimeout is a whole number of seconds (-1 for none)',
      argument: 'stopTimeout',
      backend: BACKEND,
    });
  }
  return { action, timeout: stopTimeout ?? -1, force: force === true, stateful: stateful === true };
}
