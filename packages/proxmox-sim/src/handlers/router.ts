import type { Ctx, Handler } from '../context.js';
import type { GuestType } from '../state.js';

/** The table of modelled operations, keyed `METHOD /path/template`, that handler modules fill. */
export class Routes {
  readonly table = new Map<string, Handler>();

  on(method: string, template: string, handler: Handler): void {
    const key = `${method} ${template}`;
    if (this.table.has(key)) throw new Error(`two handlers for ${key}`);
    this.table.set(key, handler);
  }

  /** One handler for a QEMU and an LXC path that differ only in `qemu`/`lxc`. */
  guest(method: string, suffix: string, handler: (ctx: Ctx, type: GuestType) => unknown): void {
    this.on(method, `/nodes/{node}/qemu/{vmid}${suffix}`, (ctx) => handler(ctx, 'qemu'));
    this.on(method, `/nodes/{node}/lxc/{vmid}${suffix}`, (ctx) => handler(ctx, 'lxc'));
  }
}

/** A module of handlers: it registers each of its operations explicitly. */
export interface HandlerModule {
  register(routes: Routes): void;
}
