import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * SHA-256 crypt (`$5$salt$hash`, Ulrich Drepper's specification, 5000 rounds): PVE keeps a VM's
 * `cipassword` this way (PVE::Tools::encrypt_pw), so the cloud-init dump and the guest's password
 * check see the hash, never the password. Node has no crypt(3), hence this implementation.
 */

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS = 5000;

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `length` bytes of `block` repeated. */
function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

function encode(c: Buffer): string {
  let out = '';
  const put = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  const at = (i: number) => c[i] as number;
  for (let i = 0; i < 10; i++) {
    // The specification's byte order: (0,10,20), (21,1,11), (12,22,2), ... one step of 10 each time.
    const a = (i * 21) % 30;
    const b = (a + 10) % 30;
    const d = (a + 20) % 30;
    put(at(a), at(b), at(d), 4);
  }
  put(0, at(31), at(30), 3);
  return out;
}

/** `crypt(password, "$5$salt$")` as glibc computes it (default rounds; a salt of at most 16 characters). */
export function sha256Crypt(password: string, salt: string): string {
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 16), 'utf8');
  const b = sha256(p, s, p);
  const a = createHash('sha256').update(p).update(s);
  let i = p.length;
  for (; i > 32; i -= 32) a.update(b);
  a.update(b.subarray(0, i));
  for (i = p.length; i > 0; i >>= 1) a.update(i & 1 ? b : p);
  let c = a.digest();
  const dp = createHash('sha256');
  for (i = 0; i < p.length; i++) dp.update(p);
  const pBytes = repeatTo(dp.digest(), p.length);
  const ds = createHash('sha256');
  for (i = 0; i < 16 + (c[0] as number); i++) ds.update(s);
  const sBytes = repeatTo(ds.digest(), s.length);
  for (let r = 0; r < ROUNDS; r++) {
    const h = createHash('sha256');
    h.update(r & 1 ? pBytes : c);
    if (r % 3) h.update(sBytes);
    if (r % 7) h.update(pBytes);
    h.update(r & 1 ? c : pBytes);
    c = h.digest();
  }
  return `$5$${s.toString('utf8')}$${encode(c)}`;
}

/** A crypt hash as PVE makes one: an 8-character salt of base64 letters, `+` replaced by `X`. */
export function encryptPassword(password: string): string {
  const salt = randomBytes(6).toString('base64').replace(/\+/g, 'X');
  return sha256Crypt(password, salt);
}

/** Whether a value is already a crypt hash, by PVE's own test (it then stores it as it is). */
export const isCryptHash = (value: string): boolean => /^\$(?:[156]|2[ay])(\$.+){2}/.test(value);

/** Checks a password against a `$5$` hash, or against a stored clear-text password. */
export function checkPassword(password: string, stored: string): boolean {
  const m = /^\$5\$([^$]*)\$/.exec(stored);
  const got = Buffer.from(m ? sha256Crypt(password, m[1] as string) : password);
  const want = Buffer.from(stored);
  return got.length === want.length && timingSafeEqual(got, want);
}
