import { type ChildProcess, fork } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exchange } from './http-timing.js';

export type { Exchange } from './http-timing.js';

/** A transparent proxy in front of LXD's unix socket, in a process of its own, timing each exchange. */
export interface TimingProxy {
  /** Its socket: `${dir}/unix.socket`. */
  readonly socketPath: string;
  /** A directory whose `unix.socket` is the proxy (for `LXD_DIR`). */
  readonly dir: string;
  /** The exchanges that began since the last take (open ones as they stand), oldest first. */
  take(): Promise<Exchange[]>;
  /** Stops the proxy process; answers whether it was still running. */
  kill(): boolean;
}

export async function startTimingProxy(parent: string, target = '/var/lib/lxd/unix.socket'): Promise<TimingProxy> {
  const dir = join(parent, 'proxy');
  await mkdir(dir, { recursive: true });
  const socketPath = join(dir, 'unix.socket');
  // Forked with this process's flags (tsx): the child imports the HTTP framing as TypeScript.
  const child: ChildProcess = fork(new URL('./timing-proxy-child.ts', import.meta.url).pathname, [socketPath, target], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let exited = false;
  const gone = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => {
      exited = true;
      reject(new Error(`timing proxy exited (${signal ?? code})`));
    });
  });
  gone.catch(() => {});
  const waiting = new Map<number, (x: Exchange[]) => void>();
  await Promise.race([
    new Promise<void>((resolve) =>
      child.on('message', (msg: { ready?: boolean; id?: number; exchanges?: Exchange[] }) => {
        if (msg.ready) resolve();
        else if (msg.id !== undefined) {
          waiting.get(msg.id)?.(msg.exchanges ?? []);
          waiting.delete(msg.id);
        }
      }),
    ),
    gone,
  ]);
  let next = 0;
  return {
    socketPath,
    dir,
    take: () => {
      const id = ++next;
      return Promise.race([
        new Promise<Exchange[]>((resolve) => {
          waiting.set(id, resolve);
          child.send({ id, op: 'take' });
        }),
        gone,
      ]);
    },
    kill() {
      if (exited) return false;
      child.kill('SIGKILL');
      return true;
    },
  };
}

/**
 * What a client spent on the wire for one operation: from the first byte of its first request
 * to the last byte of its last answer, among the exchanges `counted` keeps (all by default).
 */
export function wireSpan(exchanges: readonly Exchange[], counted: (x: Exchange) => boolean = () => true): number {
  const kept = exchanges.filter(counted);
  if (kept.length === 0) return Number.NaN;
  return Math.max(...kept.map((x) => x.end)) - Math.min(...kept.map((x) => x.start));
}

/**
 * `GET /1.0/instances/NAME/files`: the query dropped, this run's names (`vmpb-…`), operation ids
 * and image fingerprints replaced, so that the same requests read the same every time.
 */
export function describe(x: Exchange): string {
  const path = (x.target.split('?')[0] ?? '')
    .replace(/\/vmpb-[^/]+/g, '/NAME')
    .replace(/\/operations\/[0-9a-f-]{36}/g, '/operations/ID')
    .replace(/\/images\/[0-9a-f]{64}/g, '/images/FINGERPRINT');
  return `${x.method} ${path}${x.upgraded ? ' (upgraded)' : ''}`;
}
