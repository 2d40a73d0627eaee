import { randomBytes } from 'node:crypto';
import type { Ctx } from '../context.js';
import { guestOf } from './guest-model.js';
import type { Routes } from './router.js';

/** Consoles: vncproxy/termproxy/vncshell hand out the one-time tickets console.ts checks on upgrade. */

function consoleTicket(ctx: Ctx, kind: 'vnc' | 'term', node: string, path: string, taskType: string, id: string) {
  const ticket = `PVEVNC:${Math.floor(ctx.state.nowS()).toString(16).toUpperCase().padStart(8, '0')}::${randomBytes(24).toString('base64')}`;
  const t = ctx.state.newVncTicket(kind, ctx.taskUser, path, ticket);
  const upid = ctx.state.startTask(node, taskType, id, ctx.taskUser, undefined, { duration: 10_000, log: [] }).upid;
  return {
    user: ctx.taskUser,
    ticket,
    port: t.port,
    upid,
    cert: ctx.env.certPem ?? '',
  };
}

export function register(r: Routes): void {
  r.guest('POST', '/vncproxy', (ctx, type) => {
    const g = guestOf(ctx, type);
    const r: Record<string, unknown> = consoleTicket(
      ctx,
      'vnc',
      g.node,
      `/nodes/${g.node}/${type}/${g.vmid}`,
      'vncproxy',
      String(g.vmid),
    );
    if (ctx.bool('generate-password'))
      r.password = randomBytes(6)
        .toString('base64')
        .replace(/[^!-~]/g, 'x');
    return r;
  });
  r.guest('POST', '/termproxy', (ctx, type) => {
    const g = guestOf(ctx, type);
    const r = consoleTicket(ctx, 'term', g.node, `/nodes/${g.node}/${type}/${g.vmid}`, 'vncproxy', String(g.vmid));
    const { cert: _cert, ...rest } = r;
    return rest;
  });
  r.on('POST', '/nodes/{node}/termproxy', (ctx) => {
    const node = ctx.str('node');
    const { cert: _cert, ...rest } = consoleTicket(ctx, 'term', node, `/nodes/${node}`, 'vncshell', '');
    return rest;
  });
  r.on('POST', '/nodes/{node}/vncshell', (ctx) => {
    const node = ctx.str('node');
    const r: Record<string, unknown> = consoleTicket(ctx, 'vnc', node, `/nodes/${node}`, 'vncshell', '');
    return r;
  });
}
