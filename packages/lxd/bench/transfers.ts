/**
 * Push and pull at many sizes, the three clients side by side: `files.push(Buffer)` and
 * `files.pull()` (ours), `lxc file push`/`lxc file pull` (the CLI, from and to a local file), and
 * pylxd's `files.put`/`files.get` (bytes in memory). Each is timed end to end, straight to LXD's
 * socket, and again through the timing proxy, which times the transfer's own exchanges on the
 * wire and counts the requests. Every pulled copy's sha256 must equal the pushed one's, or the run
 * fails; hashing is not timed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LxdClient } from '@vmplane/lxd';
import type { Cli, CliResult } from './cli.js';
import type { Pylxd } from './pylxd.js';
import { describe, type Exchange, type TimingProxy, wireSpan } from './timing-proxy.js';

export type TransferClient = 'ours' | 'lxc' | 'pylxd';

/** 4 KiB to 256 MiB. */
export const DEFAULT_SIZES: readonly number[] = [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20, 256 << 20];

/** `4k,1m,256m` (k, m, g; bytes without a suffix) into sizes; the defaults when absent or bad. */
export function parseSizes(text: string | undefined): number[] {
  if (!text) return [...DEFAULT_SIZES];
  const units: Record<string, number> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 };
  const sizes = text.split(',').map((part) => {
    const m = /^(\d+)([kmg]?)$/i.exec(part.trim());
    return m ? Number(m[1]) * (units[(m[2] ?? '').toLowerCase()] ?? 1) : Number.NaN;
  });
  return sizes.every((s) => Number.isSafeInteger(s) && s > 0) ? sizes : [...DEFAULT_SIZES];
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

/**
 * Transfers per client and repetition: fewer for the largest sizes, to bound the run's time
 * (each transfer is timed twice, straight and through the proxy).
 */
export function transfersFor(bytes: number, base: number): number {
  if (bytes >= 128 << 20) return 1;
  return bytes >= 32 << 20 ? Math.min(base, 2) : base;
}

export interface TransferContext {
  lxd: LxdClient;
  /** The same daemon through the timing proxy (a client of its own, connected once). */
  lxdProxied: LxdClient;
  proxy: TimingProxy;
  cli: Cli;
  py: Pylxd;
  /** The running instance transfers go to. */
  work: string;
  /** This run's prefix, for remote paths. */
  run: string;
  tmp: string;
}

export type Direction = 'push' | 'pull';
type PerClient<T> = Record<TransferClient, T>;
type PerDirection<T> = Record<Direction, PerClient<T>>;

export interface SizeSamples {
  /** End to end, straight to LXD's socket: what a user waits for. */
  e2e: PerDirection<number[]>;
  /** End to end through the proxy (minus e2e: the proxy's own cost). */
  viaProxy: PerDirection<number[]>;
  /** Proxy-timed: first byte of the files request to the last byte of its answer (see wireOf). */
  wire: PerDirection<number[]>;
  /**
   * Of the proxied run, the time the client spent outside the transfer: from its call (lxc: the
   * spawn) to the transfer's first byte, plus from its last byte to the call's return (lxc: the
   * exit). e2e minus this is the client's transfer without the proxy's own cost ("net").
   */
  outside: PerDirection<number[]>;
  /** The requests of each proxied operation, `METHOD path` joined: how often each sequence was seen. */
  requests: PerDirection<Map<string, number>>;
}

const perClient = <T>(make: () => T): PerClient<T> => ({ ours: make(), lxc: make(), pylxd: make() });
const perDirection = <T>(make: () => T): PerDirection<T> => ({ push: perClient(make), pull: perClient(make) });

export const emptySamples = (): SizeSamples => ({
  e2e: perDirection(() => []),
  viaProxy: perDirection(() => []),
  wire: perDirection(() => []),
  outside: perDirection(() => []),
  requests: perDirection(() => new Map()),
});

/** The transfer itself: the files endpoint's exchanges, and SFTP sessions (ours from 1 MiB). */
export const isTransfer = (x: Exchange) => /\/(files|sftp)$/.test(x.target.split('?')[0] ?? '');

/** The proxy-timed transfer of one operation's exchanges. */
export const wireOf = (exchanges: readonly Exchange[]) => wireSpan(exchanges, isTransfer);

/** The time outside the transfer of a call that began and ended at these epoch times (see SizeSamples). */
function outsideOf(exchanges: readonly Exchange[], call: Timed): number {
  const kept = exchanges.filter(isTransfer);
  if (kept.length === 0) return Number.NaN;
  const first = Math.min(...kept.map((x) => x.start));
  const last = Math.max(...kept.map((x) => x.end));
  return first - call.startedAt + (call.endedAt - last);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A payload of `bytes` random bytes, in memory, in a local file and loaded into the pylxd driver. */
export async function preparePayload(ctx: TransferContext, bytes: number) {
  const payload = randomBytes(bytes);
  const file = join(ctx.tmp, `payload-${bytes}.bin`);
  await writeFile(file, payload);
  await ctx.py.call({ op: 'load', file });
  return { payload, file, digest: sha256(payload), dispose: () => rm(file, { force: true }) };
}

type Payload = { payload: Buffer; file: string; digest: string };
type Via = 'direct' | 'proxy';
/** A call's end-to-end ms, and when it began and ended (epoch ms, the proxy's clock). */
interface Timed {
  ms: number;
  startedAt: number;
  endedAt: number;
}

const epoch = () => performance.timeOrigin + performance.now();

/** One push or pull by one client, straight or through the proxy. */
async function once(
  ctx: TransferContext,
  client: TransferClient,
  dir: Direction,
  data: Payload,
  via: Via,
): Promise<Timed> {
  const remote = `/tmp/${ctx.run}-${client}-size.bin`;
  const check = (got: string) => {
    if (got !== data.digest)
      throw new Error(`${client} pull of ${data.payload.length} bytes (${via}): wrong sha256 ${got}`);
  };
  switch (client) {
    case 'ours': {
      const lxd = via === 'proxy' ? ctx.lxdProxied : ctx.lxd;
      const startedAt = epoch();
      if (dir === 'push') {
        await lxd.instances.files.push(ctx.work, remote, data.payload);
        const endedAt = epoch();
        return { ms: endedAt - startedAt, startedAt, endedAt };
      }
      const f = await lxd.instances.files.pull(ctx.work, remote);
      const endedAt = epoch();
      if (f.type !== 'file') throw new Error(`pulled a ${f.type}`);
      check(sha256(f.content));
      return { ms: endedAt - startedAt, startedAt, endedAt };
    }
    case 'lxc': {
      const env = via === 'proxy' ? { LXD_DIR: ctx.proxy.dir } : undefined;
      const timed = (r: CliResult): Timed => ({ ms: r.ms, startedAt: r.spawnedAt, endedAt: r.exitedAt });
      if (dir === 'push') return timed(await ctx.cli.run(['file', 'push', data.file, `${ctx.work}${remote}`], env));
      const local = join(ctx.tmp, 'lxc-pulled.bin');
      const r = await ctx.cli.run(['file', 'pull', `${ctx.work}${remote}`, local], env);
      check(sha256(await readFile(local)));
      await rm(local, { force: true });
      return timed(r);
    }
    case 'pylxd': {
      // The driver's own in-process timing, with its wall-clock start and end.
      const cmd = { name: ctx.work, path: remote, via };
      if (dir === 'push') return await ctx.py.call<Timed>({ op: 'push', ...cmd });
      const r = await ctx.py.call<Timed & { sha256: string }>({ op: 'pull', ...cmd });
      check(r.sha256);
      return r;
    }
  }
}

/**
 * A push and a pull by one client straight to LXD (end to end), then the same through the timing
 * proxy (its exchanges timed and counted). Every pulled copy is checked.
 */
export async function transfer(
  ctx: TransferContext,
  client: TransferClient,
  data: Payload,
  into: SizeSamples,
): Promise<void> {
  for (const dir of ['push', 'pull'] as const) {
    into.e2e[dir][client].push((await once(ctx, client, dir, data, 'direct')).ms);
  }
  for (const dir of ['push', 'pull'] as const) {
    await ctx.proxy.take();
    const call = await once(ctx, client, dir, data, 'proxy');
    const exchanges = await ctx.proxy.take();
    into.viaProxy[dir][client].push(call.ms);
    into.wire[dir][client].push(wireOf(exchanges));
    into.outside[dir][client].push(outsideOf(exchanges, call));
    const seq = exchanges.map(describe).join(', ');
    const seen = into.requests[dir][client];
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
  }
  await ctx.lxd.instances.files.delete(ctx.work, `/tmp/${ctx.run}-${client}-size.bin`);
}
