import type { CallOptions } from '@vmplane/common';
import { callOptions } from '../options.js';
import { Task, type TaskStatus } from '../task.js';
import type { TaskSummary } from '../types.js';
import { parseUpid } from '../upid.js';
import type { Context } from './context.js';
import { NodeApi, type NodeTaskFilter } from './node.js';

/** Tasks by UPID, wherever they run. */
export class TasksApi {
  readonly #ctx: Context;

  /** @internal */
  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  /** A handle on an existing task (from a UPID you stored, or one PVE listed); throws for a bad UPID. */
  get(upid: string): Task {
    parseUpid(upid);
    return new Task(this.#ctx.t, upid);
  }

  async status(upid: string, opts: CallOptions = {}): Promise<TaskStatus> {
    return this.get(upid).status(opts);
  }

  /** Recent tasks of the whole cluster. */
  async list(opts: CallOptions = {}): Promise<TaskSummary[]> {
    return this.#ctx.t.get('/cluster/tasks', callOptions(opts));
  }

  /** Tasks of one node, with PVE's filters. */
  async listOnNode(node: string, filter: NodeTaskFilter = {}): Promise<TaskSummary[]> {
    return new NodeApi(this.#ctx, node).tasks(filter);
  }
}
