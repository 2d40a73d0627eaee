export {
  checkTarget,
  connectSsh,
  fingerprintOf,
  type SshConnection,
  type SshPhase,
  type SshTarget,
} from './connect.js';
export {
  SshAuthError,
  SshCommandError,
  SshConnectError,
  SshError,
  SshKeyError,
  SshSessionError,
} from './errors.js';
export {
  type GuestInitOptions,
  type GuestInitPlan,
  type GuestShell,
  type InitStep,
  initCommands,
  initGuest,
  isValidHostname,
  isValidUserName,
  sshShell,
} from './init.js';
export { createSshKey, ensureSshKey, generateEd25519, KEY_FILE, loadSshKey, SshKeyPair } from './keys.js';
export { startSshProcess } from './process.js';
export { type ReadinessOptions, type ReadinessResult, waitForSsh } from './ready.js';
export {
  LineSplitter,
  type OutputStream,
  type RunOptions,
  type RunResult,
  runCheckedOnConnection,
  runOnConnection,
  runSsh,
  signalExitCode,
} from './run.js';
export { commandLine, shellLine, shellQuote } from './shell.js';
