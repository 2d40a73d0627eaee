/**
 * Reading a secret. A password never comes from the command line (where `ps` and shell history see
 * it): it is piped on stdin (`--passwd-stdin`) or typed at a prompt that echoes nothing.
 */
import { CliError, ExitCode } from './errors.js';

/** All of stdin, without the one line end that `echo` and here-strings add. */
export async function readSecretFromStdin(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (text === '') throw new CliError('--passwd-stdin was given but stdin was empty', { exitCode: ExitCode.usage });
  return text;
}

/** Asks on stderr and reads one line from the terminal with echo off. Ctrl-C aborts (exit 130). */
export function promptSecret(
  question: string,
  stdin: NodeJS.ReadStream = process.stdin,
  stderr: NodeJS.WriteStream = process.stderr,
): Promise<string> {
  if (!stdin.isTTY) {
    return Promise.reject(
      new CliError('cannot prompt for a password: stdin is not a terminal', {
        exitCode: ExitCode.usage,
        hint: 'pipe it with --passwd-stdin',
      }),
    );
  }
  return new Promise((resolve, reject) => {
    let answer = '';
    const done = (error?: CliError) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
      if (error) reject(error);
      else resolve(answer);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('cancelled', { exitCode: ExitCode.interrupted }));
        if (ch === '\u007f' || ch === '\b') answer = [...answer].slice(0, -1).join('');
        else if (ch >= ' ') answer += ch;
      }
    };
    stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
