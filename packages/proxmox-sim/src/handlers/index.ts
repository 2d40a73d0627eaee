import type { Handler } from '../context.js';
import * as access from './access.js';
import * as agent from './agent.js';
import * as cloneMigrate from './clone-migrate.js';
import * as cloudInit from './cloud-init.js';
import * as cluster from './cluster.js';
import * as consoles from './consoles.js';
import * as download from './download.js';
import * as guests from './guests.js';
import * as lxc from './lxc.js';
import * as nodes from './nodes.js';
import * as pools from './pools.js';
import * as qemu from './qemu.js';
import { type HandlerModule, Routes } from './router.js';
import * as snapshots from './snapshots.js';
import * as storage from './storage.js';
import * as tasks from './tasks.js';

/** Every module of modelled operations. */
export const HANDLER_MODULES: readonly HandlerModule[] = [
  access,
  cluster,
  pools,
  nodes,
  tasks,
  storage,
  download,
  guests,
  qemu,
  lxc,
  snapshots,
  cloneMigrate,
  cloudInit,
  agent,
  consoles,
];

function buildTable(): ReadonlyMap<string, Handler> {
  const routes = new Routes();
  for (const m of HANDLER_MODULES) m.register(routes);
  return routes.table;
}

/** Every modelled operation, keyed `METHOD /path/template`. */
export const handlers: ReadonlyMap<string, Handler> = buildTable();
