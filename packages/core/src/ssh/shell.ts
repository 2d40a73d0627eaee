import { InvalidRequestError } from '../errors.js';

/** One word for a POSIX shell: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new InvalidRequestError({ message: 'a shell word cannot hold NUL', field: 'command' });
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An argument vector as one shell line. */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * The line that runs `argv` in `cwd` with `env` added, for a session whose remote side is a shell
 * (SSH). Variable names are checked: a name is never quoted, so it must be one.
 */
export function commandLine(
  argv: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): string {
  if (argv.length === 0 || argv[0] === '') {
    throw new InvalidRequestError({ message: 'command must name a program', field: 'command' });
  }
  const env = Object.entries(opts.env ?? {});
  for (const [name] of env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new InvalidRequestError({ message: `${JSON.stringify(name)} is not a variable name`, field: 'env' });
    }
  }
  const run =
    env.length > 0
      ? `exec env ${env.map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ')} ${shellLine(argv)}`
      : `exec ${shellLine(argv)}`;
  return opts.cwd === undefined ? run : `cd ${shellQuote(opts.cwd)} && ${run}`;
}
