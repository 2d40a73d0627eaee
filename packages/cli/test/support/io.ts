import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { run } from '../../src/main.js';
import type { Io } from '../../src/program.js';
import { Sink } from './recorded.js';

/** Runs the CLI in this process with captured output; nothing touches the real terminal. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = new Sink();
  const stderr = new Sink();
  const stdin = new PassThrough();
  stdin.end();
  const io = {
    stdin,
    stdout,
    stderr,
    env: { XDG_CONFIG_HOME: '/nonexistent-vmplane-test', ...env },
    signals: new EventEmitter(),
  } as unknown as Io;
  const code = await run(argv, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}
