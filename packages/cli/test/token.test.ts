import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '@vmplane/core';
import { vmplane } from './support/child.js';

let dataDir = '';
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'vmpt-cli-token-'));
});
after(() => rm(dataDir, { recursive: true, force: true }));

describe('vmplane token', () => {
  let secret = '';

  it('create prints the new token alone on stdout, and the store accepts it', async () => {
    const r = await vmplane(['token', 'create', '--data-dir', dataDir, '--scope', 'write', '--name', 'ci']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^vmp_[A-Za-z0-9_-]{43}\n$/);
    assert.equal(r.stderr, '');
    secret = r.stdout.trim();
    const store = await openStore({ dataDir });
    try {
      const record = await store.tokens.verify(secret);
      assert.equal(record?.scope, 'write');
      assert.equal(record?.name, 'ci');
    } finally {
      await store.close();
    }
  });

  it('list shows the token by id, name and scope, never its secret', async () => {
    const r = await vmplane(['token', 'list', '--data-dir', dataDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const records = JSON.parse(r.stdout) as { name: string; scope: string }[];
    assert.deepEqual(
      records.map((t) => [t.name, t.scope]),
      [['ci', 'write']],
    );
    assert.ok(!r.stdout.includes(secret));
    const table = await vmplane(['token', 'list', '--data-dir', dataDir]);
    assert.match(table.stdout, /^ID\s+NAME\s+SCOPE/);
    assert.ok(!table.stdout.includes(secret));
  });

  it("refuses a second token of the same name (exit 1, core's code shown)", async () => {
    const r = await vmplane(['token', 'create', '--data-dir', dataDir, '--scope', 'read', '--name', 'ci']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: a token named "ci" exists already \(already_exists\)\n$/);
  });

  it('revoke by name makes the store refuse it at once; a second revoke is not found (exit 5)', async () => {
    const r = await vmplane(['token', 'revoke', 'ci', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const store = await openStore({ dataDir });
    try {
      assert.equal(await store.tokens.verify(secret), undefined);
    } finally {
      await store.close();
    }
    const again = await vmplane(['token', 'revoke', 'ci', '--data-dir', dataDir]);
    assert.equal(again.code, 5);
  });
});
