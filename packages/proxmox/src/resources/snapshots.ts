import { type CallOptions, InvalidArgumentError, path } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { GuestType } from '../guest-config.js';
import { checkSnapshotName } from '../ids.js';
import { callOptions, options } from '../options.js';
import type { Task } from '../task.js';
import type { Snapshot } from '../types.js';
import type { Context } from './context.js';

export interface SnapshotCreateOptions extends CallOptions {
  description?: string;
  /** QEMU only: also save the RAM, so a rollback resumes the running VM. */
  vmstate?: boolean;
}

/** `.../{qemu|lxc}/{vmid}/snapshot`. Snapshot names follow PVE's rule: a letter, then letters, digits, `-`, `_`. */
export class SnapshotsApi {
  readonly #ctx: Context;
  readonly #type: GuestType;
  readonly #node: string;
  readonly #vmid: number;

  /** @internal The node and VMID are checked by the guest. */
  constructor(ctx: Context, type: GuestType, node: string, vmid: number) {
    this.#ctx = ctx;
    this.#type = type;
    this.#node = node;
    this.#vmid = vmid;
  }

  #base() {
    return this.#type === 'qemu'
      ? path`/nodes/${this.#node}/qemu/${this.#vmid}/snapshot`
      : path`/nodes/${this.#node}/lxc/${this.#vmid}/snapshot`;
  }

  #named(name: string, sub = '') {
    return `${this.#base()}${path`/${checkSnapshotName(name, 'name')}`}${sub}`;
  }

  /** Every snapshot, without PVE's pseudo entry `current` (the live state). */
  async list(opts: CallOptions & { includeCurrent?: boolean } = {}): Promise<Snapshot[]> {
    opts = options(opts);
    const all = await this.#ctx.t.get<Snapshot[]>(this.#base(), callOptions(opts));
    return opts.includeCurrent ? all : all.filter((s) => s.name !== 'current');
  }

  async create(name: string, opts: SnapshotCreateOptions = {}): Promise<Task> {
    opts = options(opts);
    const snapname = checkSnapshotName(name, 'name');
    // PVE keeps these names for itself: `current` is the live state, `vzdump` a backup's (LXC).
    const reserved = this.#type === 'qemu' ? ['current'] : ['current', 'vzdump'];
    if (reserved.includes(snapname)) {
      throw new InvalidArgumentError({
        message: `The snapshot name ${snapname} is reserved by PVE`,
        argument: 'name',
        backend: BACKEND,
      });
    }
    const params: Record<string, string | boolean | undefined> = { snapname, description: opts.description };
    if (this.#type === 'qemu') params.vmstate = opts.vmstate;
    const upid = await this.#ctx.t.post<string>(this.#base(), { ...callOptions(opts), params });
    return this.#ctx.guestTask(upid, this.#node, this.#vmid);
  }

  async delete(name: string, opts: CallOptions & { force?: boolean } = {}): Promise<Task> {
    opts = options(opts);
    const upid = await this.#ctx.t.delete<string>(this.#named(name), {
      ...callOptions(opts),
      params: { force: opts.force },
    });
    return this.#ctx.guestTask(upid, this.#node, this.#vmid);
  }

  async rollback(name: string, opts: CallOptions & { start?: boolean } = {}): Promise<Task> {
    opts = options(opts);
    const upid = await this.#ctx.t.post<string>(this.#named(name, '/rollback'), {
      ...callOptions(opts),
      params: { start: opts.start },
    });
    return this.#ctx.guestTask(upid, this.#node, this.#vmid);
  }

  /** The config as it was when the snapshot was taken. */
  async config(name: string, opts: CallOptions = {}): Promise<Record<string, string | number>> {
    return this.#ctx.t.get(this.#named(name, '/config'), callOptions(opts));
  }

  async update(name: string, description: string, opts: CallOptions = {}): Promise<void> {
    if (typeof description !== 'string') {
      throw new InvalidArgumentError({
        message: 'description must be a string',
        argument: 'description',
        backend: BACKEND,
      });
    }
    await this.#ctx.t.put(this.#named(name, '/config'), { ...callOptions(opts), params: { description } });
  }
}
