import { ApiError, type CallOptions, withDeadline } from '@vmplane/common';
import type { Task } from '@vmplane/proxmox';
import { InvalidRequestError } from '../../errors.js';
import type { ProviderRef, ProxmoxRef } from '../../model/instance.js';

export const BACKEND = 'proxmox';

/** The ref as a Proxmox one, or an InvalidRequestError (another provider's ref came here). */
export function proxmoxRef(ref: ProviderRef): ProxmoxRef {
  if (ref?.type !== 'proxmox') {
    throw new InvalidRequestError({ message: `not a Proxmox guest: ${JSON.stringify(ref)}`, field: 'ref' });
  }
  return ref;
}

/** Only the signal and timeout of a caller's bag, with a default timeout. */
export function call(opts: CallOptions | undefined, timeout: number): CallOptions {
  const out: CallOptions = { timeout: opts?.timeout ?? timeout };
  if (opts?.signal) out.signal = opts.signal;
  return out;
}

/**
 * Starts a task and waits for it under one deadline for both; each log line (when `log` is given)
 * goes to it as the task writes it, so a stage streams what PVE does.
 */
export async function runTask(
  opts: CallOptions,
  start: (o: CallOptions) => Promise<Task>,
  log?: (line: string) => void | Promise<void>,
): Promise<void> {
  await withDeadline(opts, BACKEND, async (d) => {
    const task = await start({ signal: d.signal });
    if (!log) {
      await task.wait({ signal: d.signal, interval: 100, maxInterval: 1_000 });
      return;
    }
    // Follow the log while waiting: the log ends when the task does; the wait says how it ended.
    const follow = (async () => {
      let seen = 0;
      for (;;) {
        const lines = await task.log({ signal: d.signal, start: seen, limit: 500 }).catch(() => []);
        for (const l of lines) {
          if (l.n > seen) {
            seen = l.n;
            if (l.t !== 'no content') await log(`  ${l.t}`);
          }
        }
        const status = await task.status({ signal: d.signal }).catch(() => undefined);
        if (!status || status.status === 'stopped') return;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      await task.wait({ signal: d.signal, interval: 100, maxInterval: 1_000 });
    } finally {
      await follow.catch(() => {});
    }
  });
}

/** PVE's words for a guest that is not on that node (or nowhere): its config file is missing. */
export function isGuestMissing(error: unknown, vmid?: number): boolean {
  if (!(error instanceof ApiError) || error.backend !== BACKEND) return false;
  if (error.status === 404) return true;
  const m = /Configuration file '[^']*\/(\d+)\.conf' does not exist/.exec(error.message);
  return m !== null && (vmid === undefined || Number(m[1]) === vmid);
}

/** PVE's words for a volume that is not there. */
export function isVolumeMissing(error: unknown): boolean {
  return (
    error instanceof ApiError &&
    error.backend === BACKEND &&
    (error.status === 404 || /does not exist|no such volume/i.test(error.message))
  );
}

/** PVE tags (`a;b c,d`) as hypeman's key/value tags: each tag a key with an empty value. */
export function parseTags(tags: string | undefined): Record<string, string> | undefined {
  if (!tags) return undefined;
  const out: Record<string, string> = {};
  for (const t of tags.split(/[;,\s]+/)) if (t) out[t] = '';
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A name PVE takes as a VM's `name` (its `dns-name` format) from what the instance is called. */
export function guestName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 63)
    .replace(/[-.]+$/g, '');
  return cleaned || 'vm';
}

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
