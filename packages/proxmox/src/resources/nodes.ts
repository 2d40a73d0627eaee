import type { ReadOptions } from '../transport.js';
import type { NodeSummary } from '../types.js';
import type { Context } from './context.js';
import { NodeApi } from './node.js';

/** `/nodes`. */
export class NodesApi {
  constructor(private readonly ctx: Context) {}

  list(opts: ReadOptions = {}): Promise<NodeSummary[]> {
    return this.ctx.t.get<NodeSummary[]>('/nodes', { ...opts, cache: this.ctx.clusterCache() });
  }

  get(name: string): NodeApi {
    return new NodeApi(this.ctx, name);
  }
}
