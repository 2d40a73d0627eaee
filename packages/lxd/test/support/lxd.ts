import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LxdClient } from '@vmplane/lxd';

/** The image scripts/lib.sh imports for the tests. */
export const IMAGE_ALIAS = process.env.VMPLANE_IMAGE_ALIAS ?? 'vmplane-busybox';
/** Where scripts/lib.sh built the busybox images (unified, split, rootfs). */
export const IMAGE_DIR =
  process.env.VMPLANE_IMAGE_DIR ?? new URL('../../../../.cache/images', import.meta.url).pathname;

/** Every name a test creates starts with this, so cleanup never touches anything else. */
export const PREFIX = 'vmpt-';

export function uniqueName(label: string): string {
  return `${PREFIX}${label}-${randomBytes(3).toString('hex')}`.slice(0, 63);
}

export async function connect(): Promise<LxdClient> {
  return LxdClient.connect();
}

/** Deletes an instance if it exists, stopping it first; never throws (cleanup path). */
export async function removeInstance(lxd: LxdClient, name: string): Promise<void> {
  if (!name.startsWith(PREFIX)) throw new Error(`refusing to remove ${name}: not created by a test`);
  try {
    await lxd.instances.delete(name, { force: true });
  } catch (error) {
    if ((error as { status?: number }).status !== 404) {
      console.error(`cleanup of ${name} failed:`, error);
      return;
    }
  }
  removeLeftoverLogs(name);
}

/**
 * LXD 5.0.2 leaves a deleted container's log directory behind (`lxc delete` does too). The test
 * made the container, so it removes that by-product as well: `<name>`, or `<project>_<name>`.
 */
export function removeLeftoverLogs(name: string | ((entry: string) => boolean)): void {
  const ours = typeof name === 'string' ? (e: string) => e === name || e.endsWith(`_${name}`) : name;
  const logs = join(process.env.LXD_DIR ?? '/var/lib/lxd', 'logs');
  let entries: string[];
  try {
    entries = readdirSync(logs);
  } catch {
    return; // A daemon elsewhere, or one with no logs here: nothing of ours to remove.
  }
  for (const entry of entries) {
    if (ours(entry)) rmSync(join(logs, entry), { recursive: true, force: true });
  }
}

/** Creates a container named `name` from the test image and, unless told not to, starts it. */
export async function createInstance(
  lxd: LxdClient,
  name: string,
  opts: { start?: boolean; image?: string } = {},
): Promise<void> {
  await (await lxd.instances.createFromImage(name, { alias: opts.image ?? IMAGE_ALIAS })).wait();
  if (opts.start !== false) await lxd.instances.start(name);
}

/** Creates (and by default starts) a container from the test image, removed after `fn` even on failure. */
export async function withInstance<T>(
  lxd: LxdClient,
  label: string,
  fn: (name: string) => Promise<T>,
  opts: { start?: boolean; image?: string } = {},
): Promise<T> {
  const name = uniqueName(label);
  try {
    await createInstance(lxd, name, opts);
    return await fn(name);
  } finally {
    await removeInstance(lxd, name);
  }
}
