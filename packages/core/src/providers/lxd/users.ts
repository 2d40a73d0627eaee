import { type CallOptions, NotFoundError } from '@vmplane/common';
import type { LxdClient } from '@vmplane/lxd';
import { InvalidRequestError } from '../../errors.js';
import { sha512Crypt } from './crypt.js';
import { GuestCommandError } from './errors.js';

/**
 * The install's `SSH initialization` inside an LXD guest: a user, its password, its
 * authorized_keys. It uses the guest's own tools where it has them (useradd, else adduser;
 * chpasswd with `user:password` on stdin) and otherwise edits /etc/passwd, /etc/group and
 * /etc/shadow itself through the files API, with a SHA-512 crypt hash made here (minimal images
 * such as busybox have neither adduser nor chpasswd). The password never goes into a command
 * line, a log line or an error: chpasswd reads it on stdin, and every output logged is scrubbed.
 */
export interface GuestUserRequest {
  user?: string | undefined;
  password?: string | undefined;
  sshPublicKey?: string | undefined;
}

export interface GuestUserContext extends CallOptions {
  log(message: string): Promise<void>;
}

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const PROBE = 'for c in useradd adduser chpasswd; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done; true';

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export async function initializeUser(
  lxd: LxdClient,
  instance: string,
  req: GuestUserRequest,
  ctx: GuestUserContext,
): Promise<string> {
  const user = req.user ?? 'root';
  if (!USER_NAME.test(user)) {
    throw new InvalidRequestError({ message: `user ${JSON.stringify(user)} is not a valid user name`, field: 'user' });
  }
  if (req.password !== undefined && (req.password === '' || /[\n\r\0]/.test(req.password))) {
    // Said without the value: it is a secret even when it is wrong.
    throw new InvalidRequestError({ message: 'password must be non-empty and on one line', field: 'password' });
  }
  const key = req.sshPublicKey?.trim();
  if (key !== undefined && (key === '' || /[\n\r\0]/.test(key))) {
    throw new InvalidRequestError({ message: 'sshPublicKey must be one line', field: 'sshPublicKey' });
  }
  const secret = req.password;
  const scrub = (text: string) => (secret ? text.split(secret).join('[redacted]') : text);
  const run = async (command: string[], stdin?: string) => {
    const result = await lxd.instances.exec(instance, {
      command,
      ...(stdin === undefined ? {} : { stdin }),
      ...callOptionsOf(ctx),
    });
    for (const line of `${result.stdout}${result.stderr}`.split('\n')) {
      if (line.trim() !== '') await ctx.log(scrub(line));
    }
    return result.exitCode;
  };

  const tools = new Set((await execText(lxd, instance, ['sh', '-c', PROBE], ctx)).split(/\s+/).filter(Boolean));
  const done: string[] = [];

  let entry = (await readPasswd(lxd, instance, ctx)).find((e) => e.name === user);
  if (!entry) {
    if (tools.has('useradd')) {
      await ctx.log(`creating user ${user} with useradd`);
      expectZero(await run(['useradd', '-m', '-s', '/bin/sh', user]), 'useradd');
      done.push('created with useradd');
    } else if (tools.has('adduser')) {
      await ctx.log(`creating user ${user} with adduser`);
      expectZero(await run(['adduser', '-D', '-s', '/bin/sh', user]), 'adduser');
      done.push('created with adduser');
    } else {
      await ctx.log(`creating user ${user} in /etc/passwd and /etc/group (the guest has no useradd or adduser)`);
      await addUserByFiles(lxd, instance, user, ctx);
      done.push('created in /etc/passwd');
    }
    entry = (await readPasswd(lxd, instance, ctx)).find((e) => e.name === user);
    if (!entry) {
      throw new GuestCommandError({
        tool: 'passwd',
        message: `user ${user} is still missing from /etc/passwd after creating it`,
      });
    }
  }

  if (secret !== undefined) {
    if (tools.has('chpasswd')) {
      await ctx.log(`setting the password of ${user} with chpasswd (on stdin)`);
      expectZero(await run(['chpasswd'], `${user}:${secret}\n`), 'chpasswd');
      done.push('password set with chpasswd');
    } else {
      await ctx.log(`setting the password of ${user} in /etc/shadow (the guest has no chpasswd)`);
      await setShadowHash(lxd, instance, user, sha512Crypt(secret), ctx);
      done.push('password set in /etc/shadow');
    }
  }

  if (key !== undefined) {
    const added = await authorizeKey(lxd, instance, entry, key, ctx);
    await ctx.log(`${added ? 'added the key to' : 'the key was already in'} ${entry.home}/.ssh/authorized_keys`);
    done.push(added ? 'key authorized' : 'key already authorized');
  }
  return `user ${user}: ${done.join(', ') || 'exists'}`;
}

function callOptionsOf(ctx: CallOptions): CallOptions {
  const out: CallOptions = {};
  if (ctx.signal) out.signal = ctx.signal;
  if (ctx.timeout !== undefined) out.timeout = ctx.timeout;
  return out;
}

async function execText(lxd: LxdClient, instance: string, command: string[], ctx: CallOptions): Promise<string> {
  const result = await lxd.instances.exec(instance, { command, ...callOptionsOf(ctx) });
  return result.stdout.toString('utf8');
}

function expectZero(code: number, tool: string): void {
  if (code === 0) return;
  throw new GuestCommandError({
    tool,
    exitCode: code,
    message: `${tool} exited ${code} in the guest (its output is in the log above)`,
  });
}

async function readText(lxd: LxdClient, instance: string, file: string, ctx: CallOptions) {
  try {
    const f = await lxd.instances.files.pull(instance, file, callOptionsOf(ctx));
    if (f.type !== 'file')
      throw new InvalidRequestError({ message: `${file} is not a file in the guest`, field: 'user' });
    return { text: f.content.toString('utf8'), mode: f.mode, uid: f.uid, gid: f.gid };
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

async function writeText(
  lxd: LxdClient,
  instance: string,
  file: string,
  text: string,
  meta: { mode: number; uid: number; gid: number },
  ctx: CallOptions,
): Promise<void> {
  await lxd.instances.files.push(instance, file, text, { ...meta, ...callOptionsOf(ctx) });
}

async function readPasswd(lxd: LxdClient, instance: string, ctx: CallOptions): Promise<PasswdEntry[]> {
  const file = await readText(lxd, instance, '/etc/passwd', ctx);
  const out: PasswdEntry[] = [];
  for (const line of (file?.text ?? '').split('\n')) {
    const [name, , uid, gid, , home] = line.split(':');
    if (!name || uid === undefined || gid === undefined) continue;
    out.push({ name, uid: Number(uid), gid: Number(gid), home: home || (name === 'root' ? '/root' : `/home/${name}`) });
  }
  return out;
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** The fallback of useradd: the next free uid and gid from 1000, a home directory of its own. */
async function addUserByFiles(lxd: LxdClient, instance: string, user: string, ctx: CallOptions): Promise<void> {
  const passwd = await readText(lxd, instance, '/etc/passwd', ctx);
  const group = await readText(lxd, instance, '/etc/group', ctx);
  const taken = (text: string | undefined, field: number) =>
    new Set((text ?? '').split('\n').map((l) => Number(l.split(':')[field])));
  const uids = taken(passwd?.text, 2);
  const gids = taken(group?.text, 2);
  let id = 1000;
  while (uids.has(id) || gids.has(id)) id++;
  const home = `/home/${user}`;
  const root = { mode: 0o644, uid: 0, gid: 0 };
  await writeText(
    lxd,
    instance,
    '/etc/passwd',
    `${withNewline(passwd?.text ?? '')}${user}:x:${id}:${id}::${home}:/bin/sh\n`,
    passwd ?? root,
    ctx,
  );
  if (!(group?.text ?? '').split('\n').some((l) => l.split(':')[0] === user)) {
    await writeText(
      lxd,
      instance,
      '/etc/group',
      `${withNewline(group?.text ?? '')}${user}:x:${id}:\n`,
      group ?? root,
      ctx,
    );
  }
  await lxd.instances.files.mkdir(instance, home, {
    mode: 0o755,
    uid: id,
    gid: id,
    parents: true,
    ...callOptionsOf(ctx),
  });
  // Locked until a password is set: '!' is no hash any password matches.
  await setShadowHash(lxd, instance, user, '!', ctx);
}

/**
 * Sets a user's hash in /etc/shadow, making the file (every account locked, mode 0600) when the
 * guest has none, and points the passwd entries at it (`x`).
 */
async function setShadowHash(
  lxd: LxdClient,
  instance: string,
  user: string,
  hash: string,
  ctx: CallOptions,
): Promise<void> {
  const days = Math.floor(Date.now() / 86_400_000);
  const passwd = await readText(lxd, instance, '/etc/passwd', ctx);
  const shadow = await readText(lxd, instance, '/etc/shadow', ctx);
  const lines = (shadow?.text ?? '').split('\n').filter((l) => l !== '');
  const names = new Set(lines.map((l) => l.split(':')[0]));
  for (const line of (passwd?.text ?? '').split('\n')) {
    const name = line.split(':')[0];
    if (name && !names.has(name)) {
      lines.push(`${name}:*:${days}:0:99999:7:::`);
      names.add(name);
    }
  }
  const entry = `${user}:${hash}:${days}:0:99999:7:::`;
  const at = lines.findIndex((l) => l.split(':')[0] === user);
  if (at >= 0) {
    const old = (lines[at] ?? '').split(':');
    old[1] = hash;
    old[2] = String(days);
    lines[at] = old.join(':');
  } else lines.push(entry);
  await writeText(
    lxd,
    instance,
    '/etc/shadow',
    `${lines.join('\n')}\n`,
    shadow ?? { mode: 0o600, uid: 0, gid: 0 },
    ctx,
  );
  if (passwd) {
    const updated = passwd.text
      .split('\n')
      .map((line) => {
        const fields = line.split(':');
        if (fields[0] !== user || fields.length < 7 || fields[1] === 'x') return line;
        fields[1] = 'x';
        return fields.join(':');
      })
      .join('\n');
    if (updated !== passwd.text) await writeText(lxd, instance, '/etc/passwd', updated, passwd, ctx);
  }
}

/** Appends the key to `~/.ssh/authorized_keys` unless it is there; false when it was. */
async function authorizeKey(
  lxd: LxdClient,
  instance: string,
  entry: PasswdEntry,
  key: string,
  ctx: CallOptions,
): Promise<boolean> {
  const owner = { uid: entry.uid, gid: entry.gid };
  const dir = `${entry.home}/.ssh`;
  await lxd.instances.files.mkdir(instance, entry.home, {
    mode: 0o755,
    ...owner,
    parents: true,
    ...callOptionsOf(ctx),
  });
  await lxd.instances.files.mkdir(instance, dir, { mode: 0o700, ...owner, ...callOptionsOf(ctx) });
  const file = `${dir}/authorized_keys`;
  const current = await readText(lxd, instance, file, ctx);
  if ((current?.text ?? '').split('\n').some((line) => line.trim() === key)) return false;
  await writeText(lxd, instance, file, `${withNewline(current?.text ?? '')}${key}\n`, { mode: 0o600, ...owner }, ctx);
  return true;
}
