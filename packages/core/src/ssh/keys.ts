import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
// ssh2 is CommonJS: Node's ESM loader sees only its default export.
import ssh2, { type ParsedKey } from 'ssh2';
import { SshKeyError } from './errors.js';

const { utils } = ssh2;

/**
 * vmplane's own SSH key: one ed25519 pair in `<dataDir>/ssh/id_ed25519` (mode 0600) and
 * `id_ed25519.pub`, in OpenSSH's format, so `ssh -i` and ssh2 both take it. It is put into every
 * guest's cloud-init `sshkeys` beside the user's, and is how vmplane reaches a guest for readiness
 * and initialisation. Made once; every later install reuses it.
 */

export const KEY_FILE = 'id_ed25519';

/** The key pair. Printing or serialising it shows the public half only. */
export class SshKeyPair {
  /** The private key's file. */
  readonly path: string;
  /** One `authorized_keys` line: `ssh-ed25519 AAAA... comment`. */
  readonly publicKey: string;
  /** As `ssh-keygen -l` prints it: `SHA256:<base64>`. */
  readonly fingerprint: string;
  readonly #private: string;

  /** @internal */
  constructor(path: string, privateKey: string, publicKey: string, fingerprint: string) {
    this.path = path;
    this.#private = privateKey;
    this.publicKey = publicKey;
    this.fingerprint = fingerprint;
  }

  /** The private key in OpenSSH format, for ssh2's `privateKey`. */
  privateKey(): string {
    return this.#private;
  }

  toJSON(): { path: string; publicKey: string; fingerprint: string } {
    return { path: this.path, publicKey: this.publicKey, fingerprint: this.fingerprint };
  }

  [inspect.custom](): string {
    return `SshKeyPair { path: ${JSON.stringify(this.path)}, fingerprint: ${this.fingerprint} }`;
  }
}

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/**
 * A new ed25519 pair in OpenSSH's formats (`openssh-key-v1`, unencrypted, and the public line).
 * node:crypto makes the key; the encoding is written here because ssh2's own generator drops a
 * leading zero byte of the public key (about one key in 128), making keys that its own parser and
 * OpenSSH refuse.
 */
export function generateEd25519(comment = 'vmplane'): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new Error('node:crypto made an ed25519 key of an unexpected size');
  const type = 'ssh-ed25519';
  const publicBlob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    sshString(type),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  // Padded with 1, 2, 3, ... to the cipher's block size (8 for "none").
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    count,
    sshString(publicBlob),
    sshString(secret),
  ]).toString('base64');
  const lines = body.match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${type} ${publicBlob.toString('base64')} ${comment}`,
  };
}

function parsePrivate(path: string, text: string): { publicKey: string; fingerprint: string } {
  const parsed = utils.parseKey(text);
  // parseKey answers an Error (or, for a file of several keys, an array) rather than throwing.
  const key = (Array.isArray(parsed) ? (parsed as unknown[])[0] : parsed) as ParsedKey | Error | undefined;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    throw new SshKeyError({ message: `${path} is not an OpenSSH private key`, path });
  }
  if (key.type !== 'ssh-ed25519') {
    throw new SshKeyError({ message: `${path} is a ${key.type} key; vmplane's key is ed25519`, path });
  }
  const blob = key.getPublicSSH();
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  const comment = key.comment ? ` ${key.comment}` : '';
  return { publicKey: `${key.type} ${blob.toString('base64')}${comment}`, fingerprint };
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * The key in `dir`, or undefined when there is none yet. A key file that others may read is
 * tightened to 0600 first (OpenSSH refuses such a key, and it is vmplane's to keep private); a
 * missing or stale `.pub` is written again from the private key. A file that is not an ed25519
 * private key is an SshKeyError: vmplane never overwrites it.
 */
export async function loadSshKey(dir: string): Promise<SshKeyPair | undefined> {
  const path = join(dir, KEY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw new SshKeyError({ message: `${path} cannot be read: ${(error as Error).message}`, path, cause: error });
  }
  const { publicKey, fingerprint } = parsePrivate(path, text);
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) await chmod(path, 0o600);
  const pubPath = `${path}.pub`;
  const pub = await readFile(pubPath, 'utf8').catch((error: unknown) => {
    if (isMissing(error)) return undefined;
    throw error;
  });
  if (pub?.trim() !== publicKey) await writeFile(pubPath, `${publicKey}\n`, { mode: 0o644 });
  return new SshKeyPair(path, text, publicKey, fingerprint);
}

/**
 * Makes the key pair in `dir` (created 0700 when absent). The private key is written to a
 * temporary file of mode 0600 and linked into place, which fails when the name exists: of two
 * processes making it at once, one wins and the other reads the winner's key. `created` says
 * whether this call made it.
 */
export async function createSshKey(
  dir: string,
  opts: { comment?: string } = {},
): Promise<{ key: SshKeyPair; created: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, KEY_FILE);
  const pair = generateEd25519(opts.comment ?? 'vmplane');
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, pair.privateKey, { mode: 0o600, flag: 'wx' });
  let created = true;
  try {
    await chmod(tmp, 0o600);
    await link(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    created = false;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const key = await loadSshKey(dir);
  if (!key) throw new SshKeyError({ message: `${path} vanished after it was made`, path });
  return { key, created };
}

// One creation per directory in this process: concurrent installs wait for the same key.
const making = new Map<string, Promise<{ key: SshKeyPair; created: boolean }>>();

/** The key in `dir`, made when there is none. */
export async function ensureSshKey(dir: string): Promise<{ key: SshKeyPair; created: boolean }> {
  const existing = await loadSshKey(dir);
  if (existing) return { key: existing, created: false };
  let flight = making.get(dir);
  if (!flight) {
    flight = createSshKey(dir).finally(() => making.delete(dir));
    making.set(dir, flight);
    return flight;
  }
  return { key: (await flight).key, created: false };
}
