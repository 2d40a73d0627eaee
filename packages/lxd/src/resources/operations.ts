import { checkCallOptions, path } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { hideSecrets, LxdOperation } from '../operation.js';
import type { Operation } from '../types/api.js';
import { type ListOptions, type LxdCallOptions, listParts, Resource } from './base.js';

export class Operations extends Resource {
  /** Operation ids, all states. */
  async ids(opts: ListOptions = {}): Promise<string[]> {
    const urls = await this.#allStates<string>(opts, 0);
    return urls.map((u) => u.slice(u.lastIndexOf('/') + 1));
  }

  /** Operations by state ("running", "success", ...). */
  async list(opts: ListOptions = {}): Promise<Operation[]> {
    const operations = await this.#allStates<Operation>(opts, 1);
    return operations.map(hideSecrets);
  }

  /** LXD groups its operations by state; both lists want them in one. */
  async #allStates<T>(opts: ListOptions, recursion: 0 | 1): Promise<T[]> {
    const byState = await this.call<Record<string, T[]> | null>(
      'GET',
      '/1.0/operations',
      opts,
      listParts(opts, recursion),
    );
    return Object.values(byState ?? {}).flat();
  }

  async get(id: string, opts: LxdCallOptions = {}): Promise<Operation> {
    return hideSecrets(await this.call<Operation>('GET', path`/1.0/operations/${id}`, opts, {}));
  }

  /** Wraps an existing operation (by id) so it can be waited for or cancelled. */
  async attach(id: string, opts: LxdCallOptions = {}): Promise<LxdOperation> {
    return new LxdOperation(this.transport, await this.get(id, opts), opts.project ?? this.transport.project);
  }

  async cancel(id: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/operations/${id}`, opts, {});
  }

  /** Waits server-side for the operation to end (LXD's /wait), at most `timeout` ms. */
  async wait(id: string, opts: LxdCallOptions = {}): Promise<Operation> {
    checkCallOptions(opts, BACKEND);
    const timeout = opts?.timeout;
    const finite = timeout !== undefined && Number.isFinite(timeout);
    const seconds = finite ? Math.ceil(timeout / 1000) : -1;
    // LXD answers when its own wait ends; ours allows it a moment more to do so.
    const op = await this.call<Operation>(
      'GET',
      path`/1.0/operations/${id}/wait`,
      {
        ...opts,
        timeout: finite ? timeout + 5_000 : Number.POSITIVE_INFINITY,
      },
      { query: { timeout: seconds } },
    );
    return hideSecrets(op);
  }
}
