export type {
  Ipv4Allocator,
  LxdImageServer,
  LxdNetworkOptions,
  LxdProviderOptions,
} from './context.js';
export { sha512Crypt } from './crypt.js';
export { GuestCommandError } from './errors.js';
export { inSubnet } from './install.js';
export { createLxdProvider, type LxdProvider } from './provider.js';
export { parseCpuLimit, parseMemoryLimit, stateOf } from './states.js';
export {
  type DeleteImagePayload,
  type DeleteInstancePayload,
  UNDO_DELETE_IMAGE,
  UNDO_DELETE_INSTANCE,
} from './undo.js';
