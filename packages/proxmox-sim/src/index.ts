export {
  extractApiSchemaArray,
  type PveApiOperation,
  type PveApiSchema,
  type PveJsonSchema,
  type PvePermissions,
  parseSchemaText,
  reduceApidoc,
  serializeSchema,
} from './apidoc.js';
export type { AuthInfo, SimToken, SimUser } from './auth.js';
export { TICKET_LIFETIME_S } from './auth.js';
export { type Clock, SimClock } from './clock.js';
export type { AgentScript } from './context.js';
export {
  type FailOptions,
  type FaultPattern,
  Faults,
  type GuestCommandFault,
  type GuestFaults,
  type InjectedFault,
} from './faults.js';
export { FormatRegistry } from './formats/index.js';
export type { GuestExecScript, GuestSshAddress } from './guest-runtime.js';
export type { RemoteDownloads } from './handlers/download.js';
export { compilePerlPattern, translatePerlPattern, UnsupportedPatternError } from './perl-regex.js';
export { formatPropertyString, parsePropertyString, splitPropertyString } from './property-string.js';
export { generateFromSchema } from './returns.js';
export {
  findPveSchema,
  loadSchemaIndex,
  type PveOperation,
  type Route,
  readPveSchema,
  SchemaIndex,
  SHIPPED_SCHEMA,
} from './schema.js';
export type { GuestSpec } from './seed.js';
export {
  type ParamType,
  type RequestEntry,
  RequestLog,
  type Simulator,
  type SimulatorCredentials,
  type SimulatorOptions,
  startSimulator,
  type Violation,
} from './server.js';
export type {
  ChecksumAlgorithm,
  Guest,
  GuestPowerEvent,
  GuestType,
  SimNode,
  SimState,
  StorageDef,
  Task,
  Volume,
} from './state.js';
export { PveError } from './state.js';
export { type ValidationOutcome, Validator, validateParams } from './validate.js';
