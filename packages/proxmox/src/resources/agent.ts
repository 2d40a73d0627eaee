import { type CallOptions, InvalidArgumentError, path, sleep, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { AgentExecStatus, ExecResult, GuestFilesystem, GuestNetworkInterface } from '../types.js';
import type { Context } from './context.js';

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
  constructor(
    private readonly ctx: Context,
    private readonly node: string,
    private readonly vmid: number,
  ) {}

  #p(command: string) {
    return path`/nodes/${this.node}/qemu/${this.vmid}/agent/${command}`;
  }

  /** Resolves when the agent answers; rejects (PVE: 500 "QEMU guest agent is not running") when not. */
  async ping(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.post(this.#p('ping'), opts);
  }

  /** Like ping, as a boolean: false for any API error, so callers can branch on it. */
  async isRunning(opts: CallOptions = {}): Promise<boolean> {
    try {
      await this.ping(opts);
      return true;
    } catch (error) {
      if (error instanceof Error && 'status' in error) return false;
      throw error;
    }
  }

  async networkInterfaces(opts: CallOptions = {}): Promise<GuestNetworkInterface[]> {
    const r = await this.ctx.t.get<{ result?: GuestNetworkInterface[] }>(this.#p('network-get-interfaces'), opts);
    return r?.result ?? [];
  }

  async filesystems(opts: CallOptions = {}): Promise<GuestFilesystem[]> {
    const r = await this.ctx.t.get<{ result?: GuestFilesystem[] }>(this.#p('get-fsinfo'), opts);
    return r?.result ?? [];
  }

  async osInfo(opts: CallOptions = {}): Promise<Record<string, unknown>> {
    const r = await this.ctx.t.get<{ result?: Record<string, unknown> }>(this.#p('get-osinfo'), opts);
    return r?.result ?? {};
  }

  async hostname(opts: CallOptions = {}): Promise<string | undefined> {
    const r = await this.ctx.t.get<{ result?: { 'host-name'?: string } }>(this.#p('get-host-name'), opts);
    return r?.result?.['host-name'];
  }

  /** Starts a process; the command is an argument vector, never a shell line. */
  async exec(command: readonly string[], opts: ExecOptions = {}): Promise<{ pid: number }> {
    if (command.length === 0 || command.some((a) => typeof a !== 'string')) {
      throw new InvalidArgumentError({
        message: 'command must be a non-empty array of strings',
        argument: 'command',
        backend: BACKEND,
      });
    }
    return this.ctx.t.post<{ pid: number }>(this.#p('exec'), {
      ...opts,
      params: { command: [...command], 'input-data': opts.input },
    });
  }

  execStatus(pid: number, opts: CallOptions = {}): Promise<AgentExecStatus> {
    return this.ctx.t.get<AgentExecStatus>(this.#p('exec-status'), { ...opts, params: { pid } });
  }

  /**
   * Runs a command to completion and returns its exit code and output. A string command is split
   * on whitespace; pass an array for arguments with spaces.
   */
  execute(command: string | readonly string[], opts: ExecuteOptions = {}): Promise<ExecResult> {
    const argv = typeof command === 'string' ? command.split(/\s+/).filter(Boolean) : command;
    return withDeadline(opts, BACKEND, async (d) => {
      const { pid } = await this.exec(argv, {
        signal: d.signal,
        ...(opts.input !== undefined ? { input: opts.input } : {}),
      });
      let delay = opts.interval ?? 100;
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
    });
  }

  /** Reads a file (up to 16 MiB, PVE's limit). */
  async fileRead(file: string, opts: CallOptions = {}): Promise<{ content: string; truncated: boolean }> {
    const r = await this.ctx.t.get<{ content: string; truncated?: boolean }>(this.#p('file-read'), {
      ...opts,
      params: { file },
    });
    return { content: r.content, truncated: Boolean(r.truncated) };
  }

  /** Writes a file; binary content goes base64-encoded (`encode: false`, as PVE expects then). */
  async fileWrite(file: string, content: string | Uint8Array, opts: CallOptions = {}): Promise<void> {
    const params =
      typeof content === 'string'
        ? { file, content }
        : { file, content: Buffer.from(content).toString('base64'), encode: false };
    await this.ctx.t.post(this.#p('file-write'), { ...opts, params });
  }

  /** Asks the guest OS to shut down through the agent. */
  async shutdown(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.post(this.#p('shutdown'), opts);
  }

  async setUserPassword(
    username: string,
    password: string,
    opts: CallOptions & { crypted?: boolean } = {},
  ): Promise<void> {
    await this.ctx.t.post(this.#p('set-user-password'), {
      ...opts,
      params: { username, password, crypted: opts.crypted },
    });
  }
}
