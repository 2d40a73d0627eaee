import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from './errors.js';

/**
 * A Proxmox task id: `UPID:node:pid:pstart:starttime:type:id:user:`, with pid, pstart and starttime
 * in upper-case hex. `user` may carry an API token name (`root@pam!ci`), and `id` may be empty.
 */
export interface Upid {
  node: string;
  /** Process id of the worker, decimal. */
  pid: number;
  /** Process start time in clock ticks, decimal. */
  pstart: number;
  /** Unix time the task started, decimal. */
  starttime: number;
  /** Task type: qmstart, vzdump, qmigrate, ... */
  type: string;
  /** The object the task acts on, usually a VMID; may be empty. */
  id: string;
  /** `user@realm`, or `user@realm!tokenid` for a token. */
  user: string;
  /** The token id part of `user`, when the task was started with an API token. */
  tokenId: string | undefined;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8,}):([0-9A-Fa-f]{8,}):([0-9A-Fa-f]{8,}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

export function isUpid(text: unknown): text is string {
  return typeof text === 'string' && UPID_RE.test(text);
}

export function parseUpid(text: string): Upid {
  const m = typeof text === 'string' ? UPID_RE.exec(text) : null;
  if (!m)
    throw new InvalidArgumentError({
      message: `Not a UPID: ${typeof text === 'string' ? JSON.stringify(text.slice(0, 120)) : typeof text}`,
      argument: 'upid',
      backend: BACKEND,
    });
  const user = m[7]!;
  const bang = user.indexOf('!');
  return {
    node: m[1]!,
    pid: Number.parseInt(m[2]!, 16),
    pstart: Number.parseInt(m[3]!, 16),
    starttime: Number.parseInt(m[4]!, 16),
    type: m[5]!,
    id: m[6]!,
    user,
    tokenId: bang >= 0 ? user.slice(bang + 1) : undefined,
  };
}

const hex = (n: number) => Math.trunc(n).toString(16).toUpperCase().padStart(8, '0');

/** The inverse of parseUpid: `formatUpid(parseUpid(s)) === s` for any UPID PVE writes. */
export function formatUpid(upid: Omit<Upid, 'tokenId'> & { tokenId?: string | undefined }): string {
  const user = upid.tokenId && !upid.user.includes('!') ? `${upid.user}!${upid.tokenId}` : upid.user;
  return `UPID:${upid.node}:${hex(upid.pid)}:${hex(upid.pstart)}:${hex(upid.starttime)}:${upid.type}:${upid.id}:${user}:`;
}
