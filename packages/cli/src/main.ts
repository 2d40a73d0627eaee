/** The entry point: parse, run, render any failure once, and exit with a code scripts can test. */
import { CommanderError } from 'commander';
import { ExitCode, renderError } from './errors.js';
import { buildProgram, type Io } from './program.js';

export async function run(argv: readonly string[], io: Io): Promise<number> {
  let code: number = ExitCode.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  // Commander throws instead of exiting (buildProgram sets it up), so one place decides the exit
  // code; its own messages (unknown option, missing argument) are already written by then.
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return ExitCode.ok;
      if (error.code === 'commander.executeSubCommandAsync') return ExitCode.ok;
      return ExitCode.usage;
    }
    return renderError(error, (line) => io.stderr.write(line));
  }
  return code;
}

export async function main(argv: readonly string[]): Promise<void> {
  const io: Io = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signals: process,
  };
  const code = await run(argv, io);
  // Exit now: an idle keep-alive socket or a paused stdin must not hold the process open.
  process.exitCode = code;
  process.stdout.write('', () => process.exit(code));
}
