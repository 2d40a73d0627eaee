/**
 * Push and pull at many sizes, the three clients side by side: `files.push(Buffer)` and
 * `files.pull()` (ours), `lxc file push`/`lxc file pull` (the CLI, from and to a local file), and
 * pylxd's `files.put`/`files.get` (bytes in memory). Every pulled copy's sha256 must equal the
 * pushed one's, or the run fails; hashing is not timed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LxdClient } from '@vmplane/lxd';
import type { Cli } from './cli.js';
import type { Pylxd } from './pylxd.js';

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

/** Transfers per client and repetition: fewer for the largest sizes, to bound the run's time. */
export function transfersFor(bytes: number, base: number): number {
  return bytes >= 128 << 20 ? 1 : base;
}

export interface TransferContext {
  lxd: LxdClient;
  cli: Cli;
  py: Pylxd;
  /** The running instance transfers go to. */
  work: string;
  /** This run's prefix, for remote paths. */
  run: string;
  tmp: string;
}

export interface SizeSamples {
  push: Record<TransferClient, number[]>;
  pull: Record<TransferClient, number[]>;
}

export const emptySamples = (): SizeSamples => ({
  push: { ours: [], lxc: [], pylxd: [] },
  pull: { ours: [], lxc: [], pylxd: [] },
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A payload of `bytes` random bytes, in memory, in a local file and loaded into the pylxd driver. */
export async function preparePayload(ctx: TransferContext, bytes: number) {
  const payload = randomBytes(bytes);
  const file = join(ctx.tmp, `payload-${bytes}.bin`);
  await writeFile(file, payload);
  await ctx.py.call({ op: 'load', file });
  return { payload, file, digest: sha256(payload), dispose: () => rm(file, { force: true }) };
}

/** One push and one pull by one client; the pulled bytes are checked. */
export async function transfer(
  ctx: TransferContext,
  client: TransferClient,
  data: { payload: Buffer; file: string; digest: string },
): Promise<{ push: number; pull: number }> {
  const remote = `/tmp/${ctx.run}-${client}-size.bin`;
  const check = (got: string) => {
    if (got !== data.digest) throw new Error(`${client} pull of ${data.payload.length} bytes: wrong sha256 ${got}`);
  };
  let push: number;
  let pull: number;
  switch (client) {
    case 'ours': {
      let t0 = performance.now();
      await ctx.lxd.instances.files.push(ctx.work, remote, data.payload);
      push = performance.now() - t0;
      t0 = performance.now();
      const f = await ctx.lxd.instances.files.pull(ctx.work, remote);
      pull = performance.now() - t0;
      if (f.type !== 'file') throw new Error(`pulled a ${f.type}`);
      check(sha256(f.content));
      break;
    }
    case 'lxc': {
      const local = join(ctx.tmp, 'lxc-pulled.bin');
      push = (await ctx.cli.run(['file', 'push', data.file, `${ctx.work}${remote}`])).ms;
      pull = (await ctx.cli.run(['file', 'pull', `${ctx.work}${remote}`, local])).ms;
      check(sha256(await readFile(local)));
      await rm(local, { force: true });
      break;
    }
    case 'pylxd': {
      push = (await ctx.py.call<{ ms: number }>({ op: 'push', name: ctx.work, path: remote })).ms;
      const r = await ctx.py.call<{ ms: number; sha256: string }>({ op: 'pull', name: ctx.work, path: remote });
      pull = r.ms;
      check(r.sha256);
      break;
    }
  }
  await ctx.lxd.instances.files.delete(ctx.work, remote);
  return { push, pull };
}
