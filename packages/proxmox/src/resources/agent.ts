import { ApiError, type CallOptions, InvalidArgumentError, noteSent, path, sleep, withDeadline } from '@vmplane/common';
import { pveMessage } from '../envelope.js';
import { BACKEND } from '../errors.js';
import { checkInteger, checkText, optionalMs } from '../ids.js';
import { callOptions, options } from '../options.js';
import type { AgentExecStatus, ExecResult, GuestFilesystem, GuestNetworkInterface } from '../types.js';
import type { Context } from './context.js';

/** PVE's own message of an ApiError of this client with the given status, else undefined. */
export function pveMessageOf(error: unknown, status: number): string | undefined {
  if (!(error instanceof ApiError) || error.backend !== BACKEND || error.status !== status) return undefined;
  return pveMessage(error);
}

/**
 * Whether PVE answered that the guest agent cannot be asked: not configured, not running, or the
 * VM itself not running (PVE's agent_available checks, each a 500 with exactly these words).
 */
export function isAgentUnavailable(error: unknown, vmid: number): boolean {
  const message = pveMessageOf(error, 500);
  return (
    message === 'No QEMU guest agent configured' ||
    message === 'QEMU guest agent is not running' ||
    message === `VM ${vmid} is not running`
  );
}

export interface ExecOptions extends CallOptions {
  /** Sent to the process as its stdin. */
  input?: string;
}

export interface ExecuteOptions extends ExecOptions {
  /** First poll of exec-status (ms, default 100); doubles up to 1 s. */
  interval?: number;
}

/** The QEMU guest agent of one VM: `.../qemu/{vmid}/agent/*`. */
export class AgentApi {
  readonly #ctx: Context;
  readonly #node: string;
  readonly #vmid: number;

  /** @internal The node and VMID are checked by QemuApi. */
  constructor(ctx: Context, node: string, vmid: number) {
    this.#ctx = ctx;
    this.#node = node;
    this.#vmid = vmid;
  }

  #p(command: string) {
    return path`/nodes/${this.#node}/qemu/${this.#vmid}/agent/${command}`;
  }

  /** Resolves when the agent answers; rejects (PVE: 500 "QEMU guest agent is not running") when not. */
  async ping(opts: CallOptions = {}): Promise<void> {
    await this.#ctx.t.post(this.#p('ping'), callOptions(opts));
  }

  /**
   * Like ping, as a boolean: false when PVE says the agent is not configured or not running (or
   * the VM is not running). Any other failure (401, 403, another 500) rejects.
   */
  async isRunning(opts: CallOptions = {}): Promise<boolean> {
    try {
      await this.ping(opts);
      return true;
    } catch (error) {
      if (isAgentUnavailable(error, this.#vmid)) return false;
      throw error;
    }
  }

  async networkInterfaces(opts: CallOptions = {}): Promise<GuestNetworkInterface[]> {
    const r = await this.#ctx.t.get<{ result?: GuestNetworkInterface[] }>(
      this.#p('network-get-interfaces'),
      callOptions(opts),
    );
    return r?.result ?? [];
  }

  async filesystems(opts: CallOptions = {}): Promise<GuestFilesystem[]> {
    const r = await this.#ctx.t.get<{ result?: GuestFilesystem[] }>(this.#p('get-fsinfo'), callOptions(opts));
    return r?.result ?? [];
  }

  async osInfo(opts: CallOptions = {}): Promise<Record<string, unknown>> {
    const r = await this.#ctx.t.get<{ result?: Record<string, unknown> }>(this.#p('get-osinfo'), callOptions(opts));
    return r?.result ?? {};
  }

  async hostname(opts: CallOptions = {}): Promise<string | undefined> {
    const r = await this.#ctx.t.get<{ result?: { 'host-name'?: string } }>(this.#p('get-host-name'), callOptions(opts));
    return r?.result?.['host-name'];
  }

  /** Starts a process; the command is an argument vector, never a shell line. */
  async exec(command: readonly string[], opts: ExecOptions = {}): Promise<{ pid: number }> {
    opts = options(opts);
    checkCommand(command);
    const input = opts.input === undefined ? undefined : checkInput(opts.input);
    return this.#ctx.t.post<{ pid: number }>(this.#p('exec'), {
      ...callOptions(opts),
      params: { command: [...command], 'input-data': input },
    });
  }

  async execStatus(pid: number, opts: CallOptions = {}): Promise<AgentExecStatus> {
    const params = { pid: checkInteger(pid, 'pid', 1) };
    return this.#ctx.t.get<AgentExecStatus>(this.#p('exec-status'), { ...callOptions(opts), params });
  }

  /**
   * Runs a command to completion and returns its exit code and output. A string command is split
   * on whitespace; pass an array for arguments with spaces.
   */
  async execute(command: string | readonly string[], opts: ExecuteOptions = {}): Promise<ExecResult> {
    opts = options(opts);
    const argv = typeof command === 'string' ? command.split(/\s+/).filter(Boolean) : command;
    checkCommand(argv);
    const input = opts.input === undefined ? undefined : checkInput(opts.input);
    const interval = optionalMs(opts.interval, 'interval') ?? 100;
    let started: number | undefined;
    return withDeadline(callOptions(opts), BACKEND, async (d) => {
      const { pid } = await this.exec(argv, { signal: d.signal, ...(input !== undefined ? { input } : {}) });
      started = pid;
      let delay = interval;
      for (;;) {
        const s = await this.execStatus(pid, { signal: d.signal });
        if (s.exited) {
          const result: ExecResult = {
            exitCode: s.exitcode ?? (s.signal !== undefined ? 128 + s.signal : -1),
            stdout: s['out-data'] ?? '',
            stderr: s['err-data'] ?? '',
            truncated: Boolean(s['out-truncated'] || s['err-truncated']),
          };
          if (s.signal !== undefined) result.signal = s.signal;
          return result;
        }
        await sleep(delay, d.signal);
        delay = Math.min(delay * 2, 1_000);
      }
    }).catch((error: unknown) => {
      // The process runs on in the guest: a timeout or abort names its pid.
      if (started !== undefined) noteSent(error, `pid ${started}`);
      throw error;
    });
  }

  /** Reads a file (up to 16 MiB, PVE's limit). */
  async fileRead(file: string, opts: CallOptions = {}): Promise<{ content: string; truncated: boolean }> {
    const params = { file: checkText(file, 'file', 4096) };
    const r = await this.#ctx.t.get<{ content: string; truncated?: boolean }>(this.#p('file-read'), {
      ...callOptions(opts),
      params,
    });
    return { content: r.content, truncated: Boolean(r.truncated) };
  }

  /** Writes a file; binary content goes base64-encoded (`encode: false`, as PVE expects then). */
  async fileWrite(file: string, content: string | Uint8Array, opts: CallOptions = {}): Promise<void> {
    checkText(file, 'file', 4096);
    let params: { file: string; content: string; encode?: boolean };
    if (typeof content === 'string') params = { file, content };
    else if (content instanceof Uint8Array)
      params = { file, content: Buffer.from(content).toString('base64'), encode: false };
    else
      throw new InvalidArgumentError({
        message: 'content must be a string or bytes',
        argument: 'content',
        backend: BACKEND,
      });
    // PVE's limit on what one call carries (61440 characters, after base64 for bytes).
    if (params.content.length > 61_440) {
      throw new InvalidArgumentError({
        message: 'content is larger than PVE takes in one file-write (61440 characters, base64 included)',
        argument: 'content',
        backend: BACKEND,
      });
    }
    await this.#ctx.t.post(this.#p('file-write'), { ...callOptions(opts), params });
  }

  /** Asks the guest OS to shut down through the agent. */
  async shutdown(opts: CallOptions = {}): Promise<void> {
    await this.#ctx.t.post(this.#p('shutdown'), callOptions(opts));
  }

  async setUserPassword(
    username: string,
    password: string,
    opts: CallOptions & { crypted?: boolean } = {},
  ): Promise<void> {
    opts = options(opts);
    checkText(username, 'username', 256);
    // PVE's bounds; the password itself stays out of the message.
    if (typeof password !== 'string' || password.length < 5 || password.length > 1024) {
      throw new InvalidArgumentError({
        message: 'password must be a string of 5 to 1024 characters',
        argument: 'password',
        backend: BACKEND,
      });
    }
    await this.#ctx.t.post(this.#p('set-user-password'), {
      ...callOptions(opts),
      params: { username, password, crypted: opts.crypted },
    });
  }
}

function checkCommand(command: unknown): asserts command is readonly string[] {
  if (
    !Array.isArray(command) ||
    command.length === 0 ||
    command.some((a) => typeof a !== 'string' || a.includes('\0')) ||
    command[0] === ''
  ) {
    throw new InvalidArgumentError({
      message: 'command must be a non-empty array of strings without NUL, the program first',
      argument: 'command',
      backend: BACKEND,
    });
  }
}

function checkInput(input: unknown): string {
  if (typeof input !== 'string' || input.length > 65_536) {
    throw new InvalidArgumentError({
      message: 'input must be a string of at most 65536 characters',
      argument: 'input',
      backend: BACKEND,
    });
  }
  return input;
}
