export type { CallOptions, Logger } from '@vmplane/common';
export {
  AbortError,
  ApiError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  FingerprintMismatchError,
  ForbiddenError,
  InterruptionError,
  InvalidArgumentError,
  NotFoundError,
  OperationFailedError,
  PreconditionFailedError,
  RateLimitedError,
  ServerError,
  TimeoutError,
  TlsVerificationError,
  UnauthorizedError,
  ValidationError,
  VmplaneError,
} from '@vmplane/common';
export { LxdClient, type LxdConnectOptions } from './client.js';
export { LxdError } from './errors.js';
export { etagOf } from './etag.js';
export {
  type EventLifecycle,
  type EventLogging,
  EventOverflowError,
  EventStream,
  type EventsOptions,
  type EventType,
  type LxdEvent,
  type ReconnectInfo,
} from './events.js';
export { type AliasCreate, checkAliasName, ImageAliases } from './images/aliases.js';
export { ChecksumMismatchError } from './images/errors.js';
export * from './images/streams.js';
export type { ImageData, ProgressCallback, TransferProgress } from './images/transfer.js';
export {
  checkBackupName,
  checkCertificateName,
  checkClusterMemberName,
  checkImageAlias,
  checkInstanceName,
  checkInstancePath,
  checkLinkTarget,
  checkLogFileName,
  checkName,
  checkNetworkName,
  checkProfileName,
  checkProjectName,
  checkResolvablePath,
  checkSnapshotName,
  checkStoragePoolName,
  checkVolumeName,
  checkVolumeSnapshotName,
  listEncodingOf,
  type NameKind,
  nameFromUrl,
  namesFromUrls,
  type UrlNameEncoding,
} from './names.js';
export { LxdOperation, type OperationProgress, progressOf } from './operation.js';
export type { ListOptions, LxdCallOptions, UpdateOptions } from './resources/base.js';
export type { Certificates } from './resources/certificates.js';
export type { ClusterResource } from './resources/cluster.js';
export { type ConsoleOptions, ConsoleSession, type InstanceConsole } from './resources/console.js';
export {
  type ExecBufferedOptions,
  type ExecOptions,
  type ExecProcess,
  type ExecResult,
  ExecSession,
  type InteractiveOptions,
} from './resources/exec.js';
export type {
  FileHeaders,
  FileType,
  InstanceFile,
  InstanceFiles,
  PushOptions,
  TreeOptions,
} from './resources/files.js';
export type * from './resources/images.js';
export type { Images } from './resources/images.js';
export type {
  CopyOptions,
  ImageSourceRef,
  InstanceCreate,
  Instances,
  StateAction,
  StateOptions,
} from './resources/instances.js';
export type { Networks } from './resources/networks.js';
export type { Operations } from './resources/operations.js';
export type { Profiles } from './resources/profiles.js';
export type { Projects } from './resources/projects.js';
export type { ConnectionInfo, ServerResource, TrustRequest } from './resources/server.js';
export type { SnapshotCreate } from './resources/snapshots.js';
export type { StoragePools, StorageVolumes, StorageVolumeType, VolumeCopyOptions } from './resources/storage.js';
export {
  type SftpDirEntry,
  SftpSession,
  type SftpStat,
  type SftpTransferOptions,
  type SftpWriteOptions,
} from './sftp/session.js';
export type { SftpAttrs, SftpFileType } from './sftp/wire.js';
export * from './simplestreams.js';
export { discoverSocket } from './socket.js';
export { LxdTransport, type LxdTransportOptions, type Pem, type WebSocketOptions } from './transport.js';
export type * from './types/api.js';
export { isFinal, StatusCode, statusCodeString } from './types/status-code.js';
export { writable } from './writable.js';
