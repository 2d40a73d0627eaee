import type { CallOptions } from '@vmplane/common';
import { Task, type TaskStatus } from '../task.js';
import type { TaskSummary } from '../types.js';
import { parseUpid } from '../upid.js';
import type { Context } from './context.js';
import { NodeApi, type NodeTaskFilter } from './node.js';

/** Tasks by UPID, wherever they run. */
export class TasksApi {
  constructor(private readonly ctx: Context) {}

  /** A handle on an existing task (from a UPID you stored, or one PVE listed). */
  get(upid: string): Task {
    parseUpid(upid);
    return new Task(this.ctx.t, upid);
  }

  status(upid: string, opts: CallOptions = {}): Promise<TaskStatus> {
    return this.get(upid).status(opts);
  }

  /** Recent tasks of the whole cluster. */
  list(opts: CallOptions = {}): Promise<TaskSummary[]> {
    return this.ctx.t.get('/cluster/tasks', opts);
  }

  /** Tasks of one node, with PVE's filters. */
  listOnNode(node: string, filter: NodeTaskFilter = {}): Promise<TaskSummary[]> {
    return new NodeApi(this.ctx, node).tasks(filter);
  }
}
