import { type CallOptions, path } from '@vmplane/common';
import type { GuestType } from '../guest-config.js';
import type { Task } from '../task.js';
import type { Snapshot } from '../types.js';
import type { Context } from './context.js';

export interface SnapshotCreateOptions extends CallOptions {
  description?: string;
  /** QEMU only: also save the RAM, so a rollback resumes the running VM. */
  vmstate?: boolean;
}

/** `.../{qemu|lxc}/{vmid}/snapshot`. */
export class SnapshotsApi {
  constructor(
    private readonly ctx: Context,
    private readonly type: GuestType,
    private readonly node: string,
    private readonly vmid: number,
  ) {}

  #base() {
    return this.type === 'qemu'
      ? path`/nodes/${this.node}/qemu/${this.vmid}/snapshot`
      : path`/nodes/${this.node}/lxc/${this.vmid}/snapshot`;
  }

  /** Every snapshot, without PVE's pseudo entry `current` (the live state). */
  async list(opts: CallOptions & { includeCurrent?: boolean } = {}): Promise<Snapshot[]> {
    const all = await this.ctx.t.get<Snapshot[]>(this.#base(), opts);
    return opts.includeCurrent ? all : all.filter((s) => s.name !== 'current');
  }

  async create(name: string, opts: SnapshotCreateOptions = {}): Promise<Task> {
    const params: Record<string, string | boolean | undefined> = { snapname: name, description: opts.description };
    if (this.type === 'qemu') params.vmstate = opts.vmstate;
    const upid = await this.ctx.t.post<string>(this.#base(), { ...opts, params });
    return this.ctx.guestTask(upid, this.node, this.vmid);
  }

  async delete(name: string, opts: CallOptions & { force?: boolean } = {}): Promise<Task> {
    const upid = await this.ctx.t.delete<string>(`${this.#base()}${path`/${name}`}`, {
      ...opts,
      params: { force: opts.force },
    });
    return this.ctx.guestTask(upid, this.node, this.vmid);
  }

  async rollback(name: string, opts: CallOptions & { start?: boolean } = {}): Promise<Task> {
    const upid = await this.ctx.t.post<string>(`${this.#base()}${path`/${name}/rollback`}`, {
      ...opts,
      params: { start: opts.start },
    });
    return this.ctx.guestTask(upid, this.node, this.vmid);
  }

  /** The config as it was when the snapshot was taken. */
  config(name: string, opts: CallOptions = {}): Promise<Record<string, string | number>> {
    return this.ctx.t.get(`${this.#base()}${path`/${name}/config`}`, opts);
  }

  async update(name: string, description: string, opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.put(`${this.#base()}${path`/${name}/config`}`, { ...opts, params: { description } });
  }
}
