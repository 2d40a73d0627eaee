import { createHash, randomBytes } from 'node:crypto';

/**
 * SHA-512 crypt (`$6$`, Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", the glibc
 * default), for guests that have no chpasswd: the hash is made here and only the hash travels,
 * on stdin. Node has no crypt(3); this follows the specification step by step.
 */

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;

export function sha512Crypt(password: string, salt = randomSalt(), rounds = ROUNDS_DEFAULT): string {
  const key = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 16), 'utf8');
  const sha = () => createHash('sha512');

  const b = sha().update(key).update(s).update(key).digest();
  const a = sha().update(key).update(s);
  a.update(repeat(b, key.length));
  for (let n = key.length; n > 0; n >>= 1) a.update(n & 1 ? b : key);
  const aDigest = a.digest();

  const dp = sha();
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = repeat(dp.digest(), key.length);

  const ds = sha();
  for (let i = 0; i < 16 + (aDigest[0] ?? 0); i++) ds.update(s);
  const sBytes = repeat(ds.digest(), s.length);

  let c = aDigest;
  for (let i = 0; i < rounds; i++) {
    const h = sha();
    h.update(i & 1 ? p : c);
    if (i % 3 !== 0) h.update(sBytes);
    if (i % 7 !== 0) h.update(p);
    h.update(i & 1 ? c : p);
    c = h.digest();
  }

  let out = '';
  const b64 = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  const at = (i: number) => c[i] ?? 0;
  // The specification's byte order: triples (i, i+21, i+42), rotated by i mod 3, then byte 63.
  for (let i = 0; i < 21; i++) {
    const t = [i, i + 21, i + 42];
    const r = i % 3;
    b64(at(t[r] ?? 0), at(t[(r + 1) % 3] ?? 0), at(t[(r + 2) % 3] ?? 0), 4);
  }
  b64(0, 0, at(63), 2);
  const prefix = rounds === ROUNDS_DEFAULT ? '$6$' : `$6$rounds=${rounds}$`;
  return `${prefix}${s.toString('utf8')}$${out}`;
}

function repeat(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

function randomSalt(): string {
  return Array.from(randomBytes(16), (byte) => ITOA64[byte & 0x3f]).join('');
}
