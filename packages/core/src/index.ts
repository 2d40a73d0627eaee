export * from './alloc/cidr.js';
export * from './alloc/gopveqemu.js';
export { formatIpv4, parseCidr, parseIpv4 } from './alloc/ipv4.js';
export * from './control/allocation.js';
export * from './control/api.js';
export * from './control/fork.js';
export * from './control/install.js';
export * from './control/lifecycle.js';
export * from './control/plane.js';
export * from './control/providers.js';
export * from './control/sync.js';
export * from './engine/bus.js';
export * from './engine/messages.js';
export * from './engine/runner.js';
export * from './engine/stage.js';
export * from './errors.js';
export * from './images/index.js';
export * from './model/instance.js';
export * from './model/transitions.js';
export {
  createLxdProvider,
  GuestCommandError,
  type Ipv4Allocator as LxdIpv4Allocator,
  type LxdImageServer,
  type LxdNetworkOptions,
  type LxdProvider,
  type LxdProviderOptions,
  UNDO_DELETE_IMAGE as LXD_UNDO_DELETE_IMAGE,
  UNDO_DELETE_INSTANCE as LXD_UNDO_DELETE_INSTANCE,
} from './providers/lxd/index.js';
export * from './providers/provider.js';
export {
  backendStatus as proxmoxBackendStatus,
  createProxmoxProvider,
  hypemanState as proxmoxState,
  PROXMOX_UNDO,
  type ProxmoxProvider,
  type ProxmoxProviderOptions,
  SharedDownloads,
} from './providers/proxmox/index.js';
export * from './ssh/index.js';
export * from './store/contract.js';
export { MIGRATIONS, migrateToLatest, StoreMigrationError } from './store/migrations.js';
export type { StoreSchema } from './store/schema.js';
export * from './store/sql-store.js';
export { StoreClosedError } from './store/tx.js';
