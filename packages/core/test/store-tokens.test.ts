import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { AlreadyExistsError, InvalidRequestError, openStore, STORE_FILE } from '../src/index.js';
import { tempStores } from './support/store.js';

const { dataDir, open } = tempStores('vmpt-store-tokens-');

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('API tokens', () => {
  it('gives the secret once and keeps only its SHA-256, in the table and in the file', async () => {
    const dir = dataDir();
    const store = await openStore({ dataDir: dir });
    const { token, record } = await store.tokens.create({ scope: 'write', name: 'ci' });
    assert.match(token, /^vmp_[A-Za-z0-9_-]{43}$/);
    assert.equal(record.name, 'ci');
    assert.equal(record.scope, 'write');
    assert.ok(!inspect(record).includes(token.slice(4)));
    const rows = await store.db.selectFrom('api_tokens').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.hash, sha256(token));
    for (const value of Object.values(rows[0] ?? {})) assert.ok(!String(value).includes(token.slice(4)));
    await store.close();
    // Closing checkpoints the WAL into the file; read whatever files are there, not just the main one.
    const body = Buffer.from(token.slice(4));
    for (const file of [STORE_FILE, `${STORE_FILE}-wal`, `${STORE_FILE}-shm`]) {
      const path = join(dir, file);
      if (!existsSync(path)) continue;
      const bytes = await readFile(path);
      assert.equal(bytes.indexOf(body), -1, `${file} holds the secret`);
      if (file === STORE_FILE) assert.notEqual(bytes.indexOf(Buffer.from(sha256(token))), -1, 'the hash is stored');
    }
  });

  it('verifies a live token and nothing else', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const { token, record } = await store.tokens.create({ scope: 'read' });
    assert.equal(record.name, record.id, 'an unnamed token is named by its id');
    assert.equal((await store.tokens.verify(token))?.id, record.id);
    const other = `vmp_${'A'.repeat(43)}`;
    for (const bad of [other, '', 'vmp_', token.slice(0, -1), `${token}x`, token.toUpperCase(), 42 as never])
      assert.equal(await store.tokens.verify(bad), undefined);
  });

  it('notes when a token was last used, at most once a minute', async (t) => {
    let now = Date.parse('2026-05-01T00:00:00.000Z');
    const store = await open(t, { file: ':memory:', now: () => new Date(now) });
    const { token } = await store.tokens.create({ scope: 'admin' });
    assert.equal((await store.tokens.verify(token))?.lastUsedAt, '2026-05-01T00:00:00.000Z');
    now += 30_000;
    assert.equal((await store.tokens.verify(token))?.lastUsedAt, '2026-05-01T00:00:00.000Z');
    now += 30_000;
    assert.equal((await store.tokens.verify(token))?.lastUsedAt, '2026-05-01T00:01:00.000Z');
    assert.equal((await store.tokens.list())[0]?.lastUsedAt, '2026-05-01T00:01:00.000Z');
  });

  it('revokes by id or by name, once', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const a = await store.tokens.create({ scope: 'read', name: 'alpha' });
    const b = await store.tokens.create({ scope: 'write' });
    assert.equal(await store.tokens.revoke('alpha'), true);
    assert.equal(await store.tokens.revoke('alpha'), false);
    assert.equal(await store.tokens.revoke(b.record.id), true);
    assert.equal(await store.tokens.revoke('nobody'), false);
    assert.equal(await store.tokens.verify(a.token), undefined);
    assert.equal(await store.tokens.verify(b.token), undefined);
    const listed = await store.tokens.list();
    assert.deepEqual(
      listed.map((r) => r.name),
      ['alpha', b.record.id],
    );
    assert.ok(listed.every((r) => typeof r.revokedAt === 'string'));
  });

  it('takes a revoke by another store on the same file (the CLI) at once', async (t) => {
    const dir = dataDir();
    const server = await open(t, { dataDir: dir });
    const cli = await open(t, { dataDir: dir });
    const { token } = await server.tokens.create({ scope: 'admin', name: 'ops' });
    assert.ok(await server.tokens.verify(token));
    assert.equal(await cli.tokens.revoke('ops'), true);
    assert.equal(await server.tokens.verify(token), undefined);
  });

  it('refuses a taken name, an unknown scope and an unprintable name, without a secret in the error', async (t) => {
    const store = await open(t, { file: ':memory:' });
    const { token } = await store.tokens.create({ scope: 'read', name: 'ci' });
    await assert.rejects(store.tokens.create({ scope: 'read', name: 'ci' }), (e: unknown) => {
      assert.ok(e instanceof AlreadyExistsError);
      assert.ok(!inspect(e).includes(token.slice(4)));
      return true;
    });
    await assert.rejects(store.tokens.create({ scope: 'root' as never }), InvalidRequestError);
    await assert.rejects(store.tokens.create({ scope: 'read', name: '' }), InvalidRequestError);
    await assert.rejects(store.tokens.create({ scope: 'read', name: 'a\nb' }), InvalidRequestError);
    assert.equal((await store.tokens.list()).length, 1);
  });
});
