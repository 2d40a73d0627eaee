import type { CallOptions } from '@vmplane/common';
import type { QemuApi } from '@vmplane/proxmox';
import type { GuestShell } from '../../ssh/init.js';
import { LineSplitter, type RunOptions, type RunResult } from '../../ssh/run.js';
import { commandLine, shellQuote } from '../../ssh/shell.js';
import type { ExecRequest, GuestProcess, PathInfo } from '../provider.js';

/**
 * Commands in a VM through the QEMU guest agent, for guests vmplane reaches without SSH. The agent
 * runs a command to completion and answers its output whole (PVE polls `exec-status`), so output
 * arrives at the end, stdin is given whole (`input-data`), and there is no TTY.
 */

/** A GuestShell over the agent: `sh -c <command>`, stdin as the agent's input-data. */
export function agentShell(vm: QemuApi): GuestShell {
  return {
    async run(command: string, opts: RunOptions): Promise<RunResult> {
      const stdin = opts.stdin === undefined ? undefined : Buffer.from(opts.stdin).toString('utf8');
      const r = await vm.agent.execute(['sh', '-c', command], {
        ...(stdin !== undefined ? { input: stdin } : {}),
        signal: opts.signal,
        timeout: opts.timeout,
      });
      const tail: string[] = [];
      const keep = opts.tail ?? 20;
      const emit = async (text: string, stream: 'stdout' | 'stderr') => {
        const lines: string[] = [];
        const split = new LineSplitter((l) => lines.push(l));
        split.push(Buffer.from(text));
        split.end();
        for (const l of lines) {
          tail.push(l);
          if (tail.length > keep) tail.shift();
          await opts.onLine?.(l, stream);
        }
      };
      await emit(r.stdout, 'stdout');
      await emit(r.stderr, 'stderr');
      return { exitCode: r.exitCode, ...(r.signal !== undefined ? { signal: String(r.signal) } : {}), tail };
    },
  };
}

function once(data: string): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      if (data !== '') yield Buffer.from(data);
    },
  };
}

/** A finished agent command as a GuestProcess: its output comes whole once it has exited. */
export function agentProcess(vm: QemuApi, request: ExecRequest, opts: CallOptions): GuestProcess {
  // The agent runs an argument vector itself; a shell only when a directory must be entered.
  const env = Object.entries(request.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const argv =
    request.cwd !== undefined
      ? ['sh', '-c', commandLine(request.command, { ...(request.env ? { env: request.env } : {}), cwd: request.cwd })]
      : env.length > 0
        ? ['env', ...env, ...request.command]
        : [...request.command];
  const input = request.stdin === undefined ? undefined : Buffer.from(request.stdin).toString('utf8');
  const done = vm.agent.execute(argv, {
    ...(input !== undefined ? { input } : {}),
    signal: opts.signal,
    timeout: opts.timeout,
  });
  done.catch(() => {});
  const stream = (pick: 'stdout' | 'stderr'): AsyncIterable<Uint8Array> => ({
    async *[Symbol.asyncIterator]() {
      yield* once((await done)[pick]);
    },
  });
  const exit = done.then((r) => r.exitCode);
  // A caller that reads only the output must not leave the failure unhandled.
  exit.catch(() => {});
  const unsupported = async () => {
    throw new Error('the guest agent takes stdin whole and has no terminal: use SSH for interactive commands');
  };
  return {
    stdout: stream('stdout'),
    stderr: stream('stderr'),
    write: unsupported,
    closeStdin: async () => {},
    resize: unsupported,
    signal: unsupported,
    exit,
    close: () => {},
  };
}

/** The `stat` line that `parseStat` reads: raw mode (hex), size, and the quoted name (with `-> target`). */
export function statCommand(path: string): string {
  return `stat -c '%f|%s|%N' -- ${shellQuote(path)}`;
}

/** hypeman's PathInfo from `statCommand`'s answer. */
export function parseStat(exitCode: number, stdout: string, stderr: string): PathInfo {
  if (exitCode !== 0) {
    if (/No such file or directory/.test(stderr)) return { exists: false };
    return { exists: false, error: stderr.trim() || `stat exited with ${exitCode}` };
  }
  const [modeHex = '', size = '', ...nameParts] = stdout.trim().split('|');
  const raw = Number.parseInt(modeHex, 16);
  if (!Number.isFinite(raw)) return { exists: false, error: `cannot read stat's answer: ${stdout.slice(0, 80)}` };
  const type = raw & 0o170000;
  const info: PathInfo = {
    exists: true,
    is_dir: type === 0o040000,
    is_file: type === 0o100000,
    is_symlink: type === 0o120000,
    mode: raw & 0o7777,
    size: Number(size),
  };
  // %N prints 'name' -> 'target' for a link (GNU stat quotes with ' or ").
  const m = /->\s*(['"])(.*)\1\s*$/.exec(nameParts.join('|'));
  if (info.is_symlink && m?.[2] !== undefined) info.link_target = m[2];
  return info;
}
