import { type Ctx, Envelope } from '../context.js';
import { fail, type Task } from '../state.js';
import { taskInfo } from './common.js';
import type { Routes } from './router.js';

/** Tasks: the per-node list with its filters, status, paged logs and stopping. */

function taskOn(ctx: Ctx): Task {
  const t = ctx.state.tasks.get(ctx.str('upid'));
  if (!t || t.node !== ctx.str('node')) {
    if (!/^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:[^:]*:[^:]*:[^:]+:$/.test(ctx.str('upid')))
      fail(`unable to parse worker upid '${ctx.str('upid')}'`, 400);
    return fail('no such task', 500);
  }
  return t;
}

export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/tasks', (ctx) => {
    const node = ctx.str('node');
    const vmid = ctx.optStr('vmid');
    const typefilter = ctx.optStr('typefilter');
    const userfilter = ctx.optStr('userfilter');
    const source = ctx.optStr('source') ?? 'archive';
    const errors = ctx.bool('errors');
    const since = ctx.optInt('since');
    const until = ctx.optInt('until');
    const statusfilter = ctx.optStr('statusfilter')?.split(/[,;\s]+/);
    const list = ctx.state.taskOrder
      .filter((t) => t.node === node)
      .filter((t) =>
        source === 'active' ? t.status === 'running' : source === 'archive' ? t.status === 'stopped' : true,
      )
      .filter((t) => vmid === undefined || t.id === vmid)
      .filter((t) => typefilter === undefined || t.type === typefilter)
      .filter((t) => userfilter === undefined || t.user.includes(userfilter))
      .filter((t) => !errors || (t.status === 'stopped' && t.exitstatus !== 'OK'))
      .filter((t) => since === undefined || t.starttime >= since)
      .filter((t) => until === undefined || t.starttime <= until)
      .filter((t) => {
        if (!statusfilter) return true;
        const st =
          t.status === 'running'
            ? 'active'
            : t.exitstatus === 'OK'
              ? 'ok'
              : /^WARNINGS/.test(t.exitstatus ?? '')
                ? 'warning'
                : 'error';
        return statusfilter.includes(st);
      })
      .reverse();
    const start = ctx.optInt('start') ?? 0;
    const limit = ctx.optInt('limit') ?? 50;
    return new Envelope(
      list.slice(start, start + limit).map((t) => taskInfo(t)),
      { total: list.length },
    );
  });

  r.on('GET', '/nodes/{node}/tasks/{upid}/status', (ctx) => {
    const t = taskOn(ctx);
    return {
      ...taskInfo(t),
      status: t.status,
      ...(t.status === 'stopped' ? { exitstatus: t.exitstatus } : {}),
    };
  });
  r.on('GET', '/nodes/{node}/tasks/{upid}/log', (ctx) => {
    const t = taskOn(ctx);
    const start = ctx.optInt('start') ?? 0;
    const limit = ctx.optInt('limit') ?? 50;
    const lines = t.log.length > 0 ? t.log : ['no content'];
    const page = lines
      .slice(start, limit === 0 ? undefined : start + limit)
      .map((text, i) => ({ n: start + i + 1, t: text }));
    return new Envelope(page, { total: lines.length });
  });
  r.on('DELETE', '/nodes/{node}/tasks/{upid}', (ctx) => {
    const t = taskOn(ctx);
    ctx.state.finishTask(t, 'interrupted by signal');
    return null;
  });
}
