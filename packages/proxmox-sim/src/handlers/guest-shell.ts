import { fail, type Guest } from '../state.js';

/** The guest's shell, as the simulated agent's exec and the guest's SSH server run it: a few
 * deterministic built-ins (`echo`, `printf`, `cat`, `true`/`false`, `hostname`, `whoami`, `id`,
 * `uname`, `sleep`, `exit`, `chpasswd`, `cloud-init status`, `sudo`, `reboot`/`poweroff`) and
 * `sh -c` lists of them joined by `;` or `&&`, with `>&2` redirection; `sh` alone or `sh -s`
 * runs its standard input as a script. */

export interface ShellResult {
  exitcode: number;
  out: string;
  err: string;
  ms: number;
  /** The command asked the guest to reboot or power off (the shell stops there). */
  action?: 'reboot' | 'poweroff';
}

/** Thrown by a lazy input that has not reached its end yet: run the command again once it has. */
export class InputPending extends Error {}

export interface ShellEnv {
  /** Who runs the command (`whoami`); default root. */
  user?: string;
  /** How an unknown command fails: the agent's error (a 500), or the shell's exit 127. */
  unknown?: 'agent' | 'shell';
  /** Sets an account's password (`chpasswd`); `hashed` for `chpasswd -e`. */
  setPassword?: (user: string, password: string, hashed: boolean) => boolean;
}

type Input = string | undefined | (() => string);

const readInput = (input: Input): string => (typeof input === 'function' ? input() : (input ?? ''));

export function builtinExec(g: Guest, argv: string[], input: Input, env: ShellEnv = {}): ShellResult {
  const [cmd = '', ...args] = argv;
  const base = cmd.split('/').pop() ?? cmd;
  const user = env.user ?? 'root';
  const ok = (out: string, exitcode = 0, err = '', ms = 0): ShellResult => ({ exitcode, out, err, ms });
  switch (base) {
    case 'echo':
      return args[0] === '-n' ? ok(args.slice(1).join(' ')) : ok(`${args.join(' ')}\n`);
    case 'printf':
      return ok((args[0] ?? '').replace(/\\n/g, '\n'));
    case 'cat': {
      if (args.length === 0 || (args.length === 1 && args[0] === '-')) return ok(readInput(input));
      let out = '';
      for (const f of args) {
        const c = g.files.get(f);
        if (c === undefined) return ok(out, 1, `cat: ${f}: No such file or directory\n`);
        out += c;
      }
      return ok(out);
    }
    case 'true':
      return ok('');
    case 'false':
      return ok('', 1);
    case 'hostname':
      return ok(`${g.config.name ?? `vm${g.vmid}`}\n`);
    case 'whoami':
      return ok(`${user}\n`);
    case 'id':
      return args.includes('-un') || (args.includes('-u') && args.includes('-n'))
        ? ok(`${user}\n`)
        : ok(args.includes('-u') ? `${user === 'root' ? 0 : 1000}\n` : `uid=${user === 'root' ? 0 : 1000}(${user})\n`);
    case 'uname':
      return ok(
        args.includes('-a')
          ? `Linux ${g.config.name ?? 'vm'} 6.1.0-25-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3 x86_64 GNU/Linux\n`
          : 'Linux\n',
      );
    case 'sleep':
      return ok('', 0, '', Math.max(0, Number(args[0] ?? 0) * 1000));
    case 'exit':
      return ok('', Number(args[0] ?? 0));
    case 'sudo': {
      const rest = args.filter((a, i) => !(i === 0 && /^-[nSEH]+$/.test(a)));
      return builtinExec(g, rest, input, { ...env, user: 'root' });
    }
    case 'chpasswd':
      return chpasswd(readInput(input), args.includes('-e') || args.includes('--encrypted'), user, env);
    case 'cloud-init':
      if (args[0] === 'status') return ok('status: done\n');
      return ok('', 2, `usage: cloud-init [-h] [--version] {init,modules,status,...}\n`);
    case 'reboot':
    case 'poweroff':
    case 'shutdown':
    case 'systemctl': {
      const what =
        base === 'systemctl' ? args[0] : base === 'shutdown' ? (args.includes('-r') ? 'reboot' : 'poweroff') : base;
      if (what === 'reboot' || what === 'poweroff') return { ...ok(''), action: what };
      if (base === 'systemctl') return ok('');
      return unknown(cmd, env);
    }
    case 'sh':
    case 'bash': {
      if (args[0] === '-c') return runList(g, args[1] ?? '', input, env);
      // `sh` and `sh -s` read their script from standard input.
      return runList(g, readInput(input).split('\n').join(';'), '', env);
    }
    default:
      return unknown(cmd, env);
  }
}

function unknown(cmd: string, env: ShellEnv): ShellResult {
  if (env.unknown === 'shell') return { exitcode: 127, out: '', err: `sh: 1: ${cmd}: not found\n`, ms: 0 };
  return fail(
    `Agent error: Guest agent command failed, error was 'Failed to execute child process "${cmd}" (No such file or directory)'`,
  );
}

function chpasswd(text: string, hashed: boolean, user: string, env: ShellEnv): ShellResult {
  if (user !== 'root') return { exitcode: 1, out: '', err: 'chpasswd: Permission denied.\n', ms: 0 };
  let err = '';
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const at = line.indexOf(':');
    const name = at < 0 ? line : line.slice(0, at);
    if (at < 0 || !env.setPassword?.(name, line.slice(at + 1), hashed))
      err += `chpasswd: line ${i + 1}: user '${name}' does not exist\n`;
  });
  return { exitcode: err === '' ? 0 : 1, out: '', err, ms: 0 };
}

/** A `;` / `&&` / newline list of simple commands; it stops at `exit`, a failure or a reboot. */
function runList(g: Guest, script: string, input: Input, env: ShellEnv): ShellResult {
  const result: ShellResult = { exitcode: 0, out: '', err: '', ms: 0 };
  for (const part of script.split(/\s*(?:;|&&|\n)\s*/)) {
    if (part.trim() === '' || part.trim().startsWith('#')) continue;
    const toErr = />&2\s*$/.test(part);
    const words =
      part
        .replace(/>&2\s*$/, '')
        .trim()
        .match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
    const r = builtinExec(
      g,
      words.map((w) => w.replace(/^(['"])(.*)\1$/, '$2')),
      input,
      env,
    );
    if (toErr) result.err += r.out;
    else result.out += r.out;
    result.err += r.err;
    result.exitcode = r.exitcode;
    result.ms += r.ms;
    if (r.action) return { ...result, action: r.action };
    if (words[0] === 'exit' || r.exitcode !== 0) break;
  }
  return result;
}
