export { AddressSet, bearer, clientAddress } from './auth.js';
export { type FileConfig, goPveQemuSettings, loadConfig, parseDotEnv, settingsFrom } from './config.js';
export { HttpError, toErrorBody } from './errors.js';
export { clampInstall } from './routes/gopveqemu/install.js';
export { formatBytes, parseGoDuration, parseSize } from './routes/hypeman/common.js';
export { buildServer, type RouteDeps } from './server.js';
export { goPveQemuEvent, SseStream } from './sse.js';
export { type StartedServer, type StartOptions, startServer } from './start.js';
export type { BuildOptions, GoPveQemuSettings, RouteAccess, RouteEntry, ServerConfig } from './types.js';
