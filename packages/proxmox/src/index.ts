export {
  AbortError,
  ApiError,
  BadRequestError,
  type CallOptions,
  ConflictError,
  ConnectionError,
  ForbiddenError,
  InterruptionError,
  InvalidArgumentError,
  jsonLogger,
  type Logger,
  type LogLevel,
  NotFoundError,
  OperationFailedError,
  ServerError,
  silentLogger,
  TimeoutError,
  TlsVerificationError,
  UnauthorizedError,
  ValidationError,
  VmplaneError,
} from '@vmplane/common';
export {
  aggregateCluster,
  aggregateStorage,
  type Cluster,
  type ClusterGuest,
  type ClusterNode,
  type ClusterStorage,
  clusterStatusFrom,
} from './aggregate.js';
export {
  type Authenticator,
  type PasswordCredentials,
  type Session,
  TICKET_LIFETIME_MS,
  TicketAuth,
  TokenAuth,
  type TokenCredentials,
} from './auth.js';
export { cacheTags, LruCache, type LruCacheOptions, noCache, type ProxmoxCache } from './cache.js';
export { ProxmoxClient, type ProxmoxClientOptions } from './client.js';
export {
  type CloudInitIpConfig,
  type CloudInitOptions,
  cloudInitParams,
  decodeSshKeys,
  encodeSshKeys,
} from './cloud-init.js';
export { ConsoleConnection, type ConsoleKind, type ConsoleUrlOptions, consoleUrl } from './console.js';
export { BACKEND, ProxmoxError, TfaRequiredError } from './errors.js';
export {
  type ConfiguredNetwork,
  type GuestConfig,
  type GuestType,
  type IpConfig,
  isDiskKey,
  parseGuestConfig,
  parseIpConfig,
  parseNetwork,
  parseStorageDevice,
  type RawConfig,
  type StorageBus,
  type StorageDevice,
} from './guest-config.js';
export {
  type FormatBytesOptions,
  firstNonLoopbackIp,
  formatBytes,
  formatUptime,
  type IpInterfaceLike,
  MAX_VMID,
  MIN_VMID,
  parseVmid,
  safeBool,
  safeFloat,
  safeInt,
  safeString,
} from './helpers.js';
export { normaliseBooleans } from './normalise.js';
export { formatPropertyString, type PropertyValue, parsePropertyString, parseSize } from './property-string.js';
export { type AgentApi, type ExecOptions, type ExecuteOptions, isAgentUnavailable } from './resources/agent.js';
export { type ClusterApi, ClusterView, type ClusterViewOptions } from './resources/cluster.js';
export type { CacheTtls } from './resources/context.js';
export type {
  CloneOptions,
  CloneResult,
  ConfigUpdateOptions,
  ConfigValues,
  DeleteOptions,
  GuestApi,
  GuestDetails,
} from './resources/guest.js';
export type { LxcApi, LxcMigrateOptions } from './resources/lxc.js';
export type {
  DownloadUrlOptions,
  NodeApi,
  NodeTaskFilter,
  StorageApi,
  StorageContentType,
  UploadOptions,
} from './resources/node.js';
export type { NodesApi } from './resources/nodes.js';
export {
  type CloudImageVmOptions,
  cloudImageVmParams,
  type QemuApi,
  type QemuCreateOptions,
  type QemuMigrateOptions,
  qemuCreateParams,
} from './resources/qemu.js';
export type { SnapshotCreateOptions, SnapshotsApi } from './resources/snapshots.js';
export type { TasksApi } from './resources/tasks.js';
export {
  isTaskSuccess,
  Task,
  type TaskLogLine,
  type TaskLogOptions,
  type TaskStatus,
  type TaskWaitOptions,
} from './task.js';
export { FingerprintMismatchError, normaliseFingerprint, type TlsOptions } from './tls.js';
export {
  type Method,
  type ProxmoxRetryOptions,
  ProxmoxTransport,
  type RawBody,
  type ReadOptions,
  type RequestSpec,
  type SendSpec,
  type TransportStats,
} from './transport.js';
export type * from './types.js';
export { formatUpid, isUpid, parseUpid, type Upid } from './upid.js';
