import type { Ctx } from '../context.js';
import type { ConfigValue, Task } from '../state.js';

/** Helpers every handler module shares: units, the version answered, task start and listing shapes. */

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const VERSION = { version: '9.1.3', release: '9.1', repoid: 'a1b2c3d4e5f60718', console: 'html5' as const };
export function toConfigValue(v: unknown): ConfigValue {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}
export function task(
  ctx: Ctx,
  node: string,
  type: string,
  id: string | number,
  run?: () => void,
  log?: string[],
): string {
  return ctx.state.startTask(node, type, id, ctx.taskUser, run, log ? { log } : {}).upid;
}

export function taskInfo(t: Task): Record<string, unknown> {
  const out: Record<string, unknown> = {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
  };
  if (t.status === 'stopped') {
    out.status = t.exitstatus;
    out.endtime = t.endtime;
  }
  return out;
}
