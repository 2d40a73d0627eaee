import { Readable } from 'node:stream';
import { checkCallOptions, InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';

/**
 * Checks of exec input, made before anything is sent. Each refuses what LXD 5.0.2 would run as
 * something else or fail on after the operation exists: `['']` and NUL bytes fail as exit 127 or
 * -1, `A=B` as a key sets another variable, uid 2^32-1 means "unset" to LXD and runs as root.
 */

export interface ExecInput {
  command: readonly string[];
  env?: Readonly<Record<string, string>> | undefined;
  cwd?: string | undefined;
  user?: number | undefined;
  group?: number | undefined;
}

/** The largest id LXD passes through: 2^32-1 is (uid_t)-1, "leave unchanged", which runs as root. */
const MAX_ID = 2 ** 32 - 2;
/** The kernel's winsize holds unsigned shorts. */
const MAX_TERMINAL = 65_535;
/** Linux signals, realtime ones included. */
const MAX_SIGNAL = 64;

export function checkExecInput(opts: unknown): ExecInput {
  if (typeof opts !== 'object' || opts === null) refuse('options', 'exec options must be an object');
  const input = opts as ExecInput & { signal?: unknown; timeout?: unknown };
  checkCallOptions(input as { signal?: AbortSignal; timeout?: number }, BACKEND);
  checkCommand(input.command);
  if (input.env !== undefined) checkEnv(input.env);
  if (input.cwd !== undefined) checkCwd(input.cwd);
  if (input.user !== undefined) checkId(input.user, 'user');
  if (input.group !== undefined) checkId(input.group, 'group');
  return input;
}

function checkCommand(command: unknown): void {
  if (!Array.isArray(command) || command.length === 0) {
    refuse('command', 'command must be a non-empty array of strings');
  }
  command.forEach((part: unknown, i) => {
    if (typeof part !== 'string') refuse('command', `command[${i}] must be a string, not ${typeof part}`);
    if (part.includes('\0')) refuse('command', `command[${i}] contains NUL, which no program can receive`);
    if (hasLoneSurrogate(part)) refuse('command', `command[${i}] is not well-formed Unicode`);
  });
  if (command[0] === '') refuse('command', 'command[0] must name a program, not be empty');
}

function checkEnv(env: unknown): void {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    refuse('env', 'env must be an object of strings');
  }
  for (const [key, value] of Object.entries(env)) {
    if (key === '' || key.includes('=') || key.includes('\0') || hasLoneSurrogate(key)) {
      refuse('env', `env key ${JSON.stringify(key)} is not a variable name: it must be non-empty, without '=' or NUL`);
    }
    if (typeof value !== 'string') refuse('env', `env.${key} must be a string, not ${typeof value}`);
    if (value.includes('\0') || hasLoneSurrogate(value)) {
      refuse('env', `env.${key} contains NUL or is not well-formed Unicode`);
    }
  }
}

function checkCwd(cwd: unknown): void {
  if (typeof cwd !== 'string' || !cwd.startsWith('/') || cwd.includes('\0') || hasLoneSurrogate(cwd)) {
    refuse('cwd', `cwd must be an absolute path without NUL, not ${describe(cwd)}`);
  }
}

function checkId(id: unknown, argument: 'user' | 'group'): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_ID) {
    refuse(argument, `${argument} must be an integer from 0 to ${MAX_ID}, not ${describe(id)}`);
  }
}

/** A terminal size: integers from 1 to 65535 (argument names say which of the two is wrong). */
export function checkTerminalSize(width: unknown, height: unknown): { width: number; height: number } {
  for (const [value, argument] of [
    [width, 'width'],
    [height, 'height'],
  ] as const) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_TERMINAL) {
      refuse(argument, `${argument} must be an integer from 1 to ${MAX_TERMINAL}, not ${describe(value)}`);
    }
  }
  return { width: width as number, height: height as number };
}

export function checkSignal(signal: unknown): number {
  if (typeof signal !== 'number' || !Number.isInteger(signal) || signal < 1 || signal > MAX_SIGNAL) {
    refuse('signal', `signal must be an integer from 1 to ${MAX_SIGNAL}, not ${describe(signal)}`);
  }
  return signal;
}

export type StdinSource = Buffer | Uint8Array | string | Readable;

export function checkStdin(stdin: unknown): StdinSource | undefined {
  if (
    stdin === undefined ||
    typeof stdin === 'string' ||
    stdin instanceof Uint8Array ||
    stdin instanceof Readable ||
    (typeof stdin === 'object' && stdin !== null && typeof (stdin as Readable).pipe === 'function')
  ) {
    return stdin as StdinSource | undefined;
  }
  refuse('stdin', `stdin must be a Buffer, Uint8Array, string or Readable, not ${describe(stdin)}`);
}

/** The exec POST's common fields, picked (never spread) from the caller's options. */
export function execBody(input: ExecInput): Record<string, unknown> {
  const body: Record<string, unknown> = { command: [...input.command], environment: { ...(input.env ?? {}) } };
  if (input.cwd !== undefined) body.cwd = input.cwd;
  if (input.user !== undefined) body.user = input.user;
  if (input.group !== undefined) body.group = input.group;
  return body;
}

/** The caller's project, picked out of its options (nothing else travels along). */
export function projectOf(opts: { project?: string | undefined }): { project?: string } {
  return opts.project === undefined ? {} : { project: opts.project };
}

function refuse(argument: string, message: string): never {
  throw new InvalidArgumentError({ message, argument, backend: BACKEND });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return typeof value;
}

function hasLoneSurrogate(text: string): boolean {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}
