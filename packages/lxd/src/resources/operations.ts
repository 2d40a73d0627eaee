import { path } from '@vmplane/common';
import { LxdOperation } from '../operation.js';
import type { Operation } from '../types/api.js';
import { type ListOptions, type LxdCallOptions, listQuery, Resource } from './base.js';

export class Operations extends Resource {
  /** Operation ids, all states. */
  async ids(opts: ListOptions = {}): Promise<string[]> {
    const byState = await this.call<Record<string, string[]>>('GET', '/1.0/operations', {
      ...opts,
      query: listQuery(opts, 0),
    });
    return Object.values(byState)
      .flat()
      .map((u) => u.slice(u.lastIndexOf('/') + 1));
  }

  /** Operations by state ("running", "success", ...). */
  async list(opts: ListOptions = {}): Promise<Operation[]> {
    const byState = await this.call<Record<string, Operation[]>>('GET', '/1.0/operations', {
      ...opts,
      query: listQuery(opts, 1),
    });
    return Object.values(byState).flat();
  }

  async get(id: string, opts: LxdCallOptions = {}): Promise<Operation> {
    return this.call('GET', path`/1.0/operations/${id}`, opts);
  }

  /** Wraps an existing operation (by id) so it can be waited for or cancelled. */
  async attach(id: string, opts: LxdCallOptions = {}): Promise<LxdOperation> {
    return new LxdOperation(this.transport, await this.get(id, opts), opts.project ?? this.transport.project);
  }

  async cancel(id: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/operations/${id}`, opts);
  }

  /** Waits server-side for the operation to end (LXD's /wait), at most `timeout` ms. */
  async wait(id: string, opts: LxdCallOptions = {}): Promise<Operation> {
    const seconds = opts.timeout === undefined ? -1 : Math.ceil(opts.timeout / 1000);
    return this.call('GET', path`/1.0/operations/${id}/wait`, {
      ...opts,
      query: { timeout: seconds },
      timeout: opts.timeout === undefined ? Number.POSITIVE_INFINITY : opts.timeout + 5_000,
    });
  }
}
