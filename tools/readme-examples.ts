import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A fenced ```ts block of a README, with the line it starts on. */
export interface ReadmeExample {
  line: number;
  code: string;
}

/** The ```ts / ```typescript blocks of a README, skipping those fenced as `ts no-run`. */
export async function readmeExamples(readmePath: string): Promise<ReadmeExample[]> {
  const text = await readFile(readmePath, 'utf8');
  const examples: ReadmeExample[] = [];
  const fence = /^```(ts|typescript)([^\n]*)\n([\s\S]*?)^```/gm;
  for (const match of text.matchAll(fence)) {
    if ((match[2] ?? '').includes('no-run')) continue;
    const line = text.slice(0, match.index).split('\n').length;
    examples.push({ line, code: match[3] ?? '' });
  }
  return examples;
}

export interface ExampleRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The process's PID: examples name what they create after it. */
  pid: number | undefined;
}

/**
 * Runs one example as its own ES module inside the package folder, so that imports of the
 * package's own name resolve through the workspace exactly as they would for a user.
 */
export async function runExample(
  packageDir: string,
  example: ReadmeExample,
  env: NodeJS.ProcessEnv = {},
): Promise<ExampleRun> {
  const dir = join(packageDir, '.cache', 'readme');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `example-${example.line}-${process.pid}.mts`);
  await writeFile(file, example.code);
  try {
    return await runProcess(process.execPath, ['--conditions=vmplane-source', '--import', 'tsx', file], {
      cwd: packageDir,
      env: { ...process.env, ...env },
    });
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * Runs an example as a user who installed the published packages would: the module is written
 * into `projectDir` and run there, so that package imports resolve through that project's
 * node_modules to the installed dist/ (no private export condition). Only the TypeScript loader
 * comes from this repository, by absolute URL, since the project does not install one. `env`
 * replaces the environment (nothing of this process's leaks in unless passed).
 */
export async function runInstalledExample(
  projectDir: string,
  file: string,
  example: ReadmeExample,
  opts: { env: NodeJS.ProcessEnv; timeout?: number },
): Promise<ExampleRun> {
  const path = join(projectDir, file);
  await writeFile(path, example.code);
  return runProcess(process.execPath, ['--import', import.meta.resolve('tsx'), path], {
    cwd: projectDir,
    env: opts.env,
    ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }),
  });
}

/** Runs a program to its end, collecting its output; rejects only when it cannot start. */
export function runProcess(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<ExampleRun> {
  return new Promise<ExampleRun>((resolve, reject) => {
    const child = spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, pid: child.pid }));
  });
}
