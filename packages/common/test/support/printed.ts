// Shared by the secret tests of every client package (lxd, proxmox): only node builtins here,
// so importing it makes no package depend on another.
import assert from 'node:assert/strict';
import { format, inspect } from 'node:util';

/** Everything an error exposes: message, stack, own and hidden properties, causes, JSON. */
export function serialiseError(error: unknown): string {
  const parts = [inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true })];
  if (error instanceof Error) {
    parts.push(String(error.stack), error.message);
    const own: Record<string, unknown> = {};
    for (const key of Object.getOwnPropertyNames(error)) own[key] = (error as unknown as Record<string, unknown>)[key];
    parts.push(JSON.stringify(own, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    if (error.cause !== undefined) parts.push(serialiseError(error.cause));
  }
  parts.push(JSON.stringify(error) ?? '');
  return parts.join('\n');
}

/**
 * Every way a user could print an object: inspect (plain, and deep with hidden fields), %o, %j,
 * JSON (cycles and bigints allowed), String. `callGetters` has the deep inspect call getters too:
 * proxmox's objects allow it; on lxd's (sockets and streams inside) it never finishes printing.
 */
export function printed(value: unknown, opts: { callGetters?: boolean } = {}): string {
  const seen = new WeakSet<object>();
  const json = JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return String(v);
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[seen]';
      seen.add(v);
    }
    return v;
  });
  return [
    inspect(value),
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: opts.callGetters === true }),
    format('%o', value),
    format('%j', value),
    json ?? '',
    String(value),
  ].join('\n');
}

/** Runs `call`, expects it to throw, and returns the thrown error. */
export async function thrown(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  assert.fail('expected the call to throw');
}

/**
 * Asserts that no secret stands in any printed text, as it is or URL-encoded (cookies and query
 * strings carry them so). `showText` adds the whole text to a failure's message.
 */
export function assertNoSecrets(
  haystacks: Iterable<readonly [where: string, text: string]>,
  secrets: Iterable<string>,
  opts: { showText?: boolean } = {},
): void {
  const all = [...secrets];
  for (const [where, text] of haystacks) {
    for (const secret of all) {
      const shown = opts.showText ? `:\n${text}` : '';
      assert.ok(!text.includes(secret), `${where} contains a secret (${secret.slice(0, 6)}...)${shown}`);
      assert.ok(!text.includes(encodeURIComponent(secret)), `${where} contains an encoded secret`);
    }
  }
}
