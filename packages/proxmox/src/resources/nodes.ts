import { readOptions } from '../options.js';
import type { ReadOptions } from '../transport.js';
import type { NodeSummary } from '../types.js';
import type { Context } from './context.js';
import { NodeApi } from './node.js';

/** `/nodes`. */
export class NodesApi {
  readonly #ctx: Context;

  /** @internal */
  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async list(opts: ReadOptions = {}): Promise<NodeSummary[]> {
    return this.#ctx.t.get<NodeSummary[]>('/nodes', { ...readOptions(opts), cache: this.#ctx.clusterCache() });
  }

  /** One node; throws InvalidArgumentError (backend 'proxmox') for a name PVE would refuse. */
  get(name: string): NodeApi {
    return new NodeApi(this.#ctx, name);
  }
}
