import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Debian's interpreter, which has python3-pylxd (the `python3` on PATH may be another one). */
const PYTHON = process.env.VMPLANE_PYLXD_PYTHON ?? '/usr/bin/python3';

/** One long-lived pylxd driver process; each call answers with the driver's in-process timings. */
export interface Pylxd {
  readonly version: string;
  call<T extends object>(cmd: Record<string, unknown>): Promise<T>;
  /** Kills the driver; answers whether it was still running. */
  kill(): boolean;
}

type Answer = { ok: boolean; error?: string; trace?: string } & Record<string, unknown>;

export async function startPylxd(script: string): Promise<Pylxd> {
  const child = spawn(PYTHON, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr.push(s);
    if (stderr.length > 50) stderr.shift();
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let exited = false;
  const gone = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => {
      exited = true;
      reject(new Error(`pylxd driver exited (${signal ?? code}): ${stderr.join('').trim().slice(-2000)}`));
    });
    child.once('error', reject);
  });
  gone.catch(() => {});
  const next = async (): Promise<Answer> => {
    const line = await Promise.race([lines.next(), gone]);
    if (line.done) return Promise.race([gone, Promise.reject(new Error('pylxd driver closed its output'))]);
    return JSON.parse(line.value) as Answer;
  };
  const hello = await next();
  // One call at a time: answers come back in order.
  let queue: Promise<unknown> = Promise.resolve();
  const call = <T extends object>(cmd: Record<string, unknown>): Promise<T> => {
    const p = queue.then(async () => {
      if (exited) throw new Error('pylxd driver is gone');
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
      const answer = await next();
      if (!answer.ok) throw new Error(`pylxd ${String(cmd.op)}: ${answer.error}\n${answer.trace ?? ''}`);
      return answer as unknown as T;
    });
    queue = p.catch(() => {});
    return p;
  };
  return {
    version: String(hello.version ?? '?'),
    call,
    kill() {
      if (exited) return false;
      child.kill('SIGKILL');
      return true;
    },
  };
}
