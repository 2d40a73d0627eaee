import { fail, type Guest } from '../state.js';

/** The guest's shell, as the simulated agent's exec runs it: a few deterministic built-ins (`echo`,
 * `printf`, `cat`, `true`/`false`, `hostname`, `whoami`, `uname`, `sleep`, `exit`) and `sh -c` lists
 * of them joined by `;` or `&&`, with `>&2` redirection. */

export function builtinExec(
  g: Guest,
  argv: string[],
  input: string | undefined,
): { exitcode: number; out: string; err: string; ms: number } {
  const [cmd = '', ...args] = argv;
  const base = cmd.split('/').pop() ?? cmd;
  const ok = (out: string, exitcode = 0, err = '', ms = 0) => ({ exitcode, out, err, ms });
  switch (base) {
    case 'echo':
      return args[0] === '-n' ? ok(args.slice(1).join(' ')) : ok(`${args.join(' ')}\n`);
    case 'printf':
      return ok((args[0] ?? '').replace(/\\n/g, '\n'));
    case 'cat': {
      if (args.length === 0) return ok(input ?? '');
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
      return ok('root\n');
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
    case 'sh':
    case 'bash': {
      if (args[0] !== '-c') return ok(input ?? '', 0);
      let out = '';
      let err = '';
      let code = 0;
      let ms = 0;
      for (const part of (args[1] ?? '').split(/\s*(?:;|&&)\s*/)) {
        if (part.trim() === '') continue;
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
        );
        if (toErr) err += r.out;
        else out += r.out;
        err += r.err;
        code = r.exitcode;
        ms += r.ms;
        if (words[0] === 'exit' || code !== 0) break;
      }
      return ok(out, code, err, ms);
    }
    default:
      return fail(
        `Agent error: Guest agent command failed, error was 'Failed to execute child process "${cmd}" (No such file or directory)'`,
      );
  }
}
