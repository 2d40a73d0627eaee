import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { type OpenStoreOptions, openStore, type SqlStore } from '../../src/index.js';

/**
 * For a store test file: one temp folder (made before its tests, removed after them, even when one
 * fails), a fresh data directory in it per call, and stores closed when the test that opened them ends.
 */
export function tempStores(prefix: string): {
  dataDir(): string;
  open(t: TestContext, opts: OpenStoreOptions): Promise<SqlStore>;
} {
  let root = '';
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });
  return {
    dataDir() {
      n += 1;
      return join(root, `d${n}`);
    },
    async open(t, opts) {
      const store = await openStore(opts);
      t.after(() => store.close());
      return store;
    },
  };
}
