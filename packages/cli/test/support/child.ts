import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The launcher users run (`npx vmplane` links to it): it runs the sources when dist/ is absent. */
export const BIN = fileURLToPath(new URL('../../bin/vmplane.js', import.meta.url));

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `vmplane <args>` as a child process and collects its output. */
export function vmplane(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      // A given environment is the whole of it, so that the runner's own VMPLANE_* cannot leak in.
      env: { NO_COLOR: '1', ...(opts.env ?? process.env) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
