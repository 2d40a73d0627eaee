import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where LXD listens, in the order the Go client looks: LXD_SOCKET, $LXD_DIR, Debian's, the snap's. */
export function discoverSocket(
  env: NodeJS.ProcessEnv = process.env,
  exists: (p: string) => boolean = existsSync,
): string | undefined {
  const candidates = [
    env.LXD_SOCKET,
    env.LXD_DIR ? join(env.LXD_DIR, 'unix.socket') : undefined,
    '/var/lib/lxd/unix.socket',
    '/var/snap/lxd/common/lxd/unix.socket',
  ].filter((p): p is string => typeof p === 'string' && p !== '');
  return candidates.find((p) => exists(p));
}
