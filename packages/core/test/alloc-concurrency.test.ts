import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ExhaustedError, GoPveQemuAllocator, openStore, type SqlStore } from '../src/index.js';

let root = '';
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmpt-alloc-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function dataDir(): string {
  n += 1;
  return join(root, `d${n}`);
}

async function open(t: TestContext, dir: string): Promise<SqlStore> {
  const store = await openStore({ dataDir: dir });
  t.after(() => store.close());
  return store;
}

const CANDIDATES = Array.from({ length: 1000 }, (_, i) => String(i));

describe('allocation under concurrency', () => {
  it('two stores on one file: 200 concurrent allocations, all distinct, none lost', async (t) => {
    const dir = dataDir();
    const a = await open(t, dir);
    const b = await open(t, dir);
    const got = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? a : b).allocations.allocate({ pool: 'p', owner: `op-${i}`, candidates: CANDIDATES }),
      ),
    );
    const values = got.map((g) => g?.value);
    assert.ok(values.every((v) => v !== undefined));
    assert.equal(new Set(values).size, 200);
    const stored = await a.allocations.list({ pool: 'p' });
    assert.equal(stored.length, 200);
    assert.deepEqual(new Set(stored.map((s) => s.owner)), new Set(got.map((g) => g?.owner)));
    // The lowest values, since each allocation takes the first free one.
    assert.deepEqual(new Set(values), new Set(CANDIDATES.slice(0, 200)));
  });

  it('go-pve-qemu pairs from two stores: every slot handed out once, the rest ExhaustedError', async (t) => {
    const dir = dataDir();
    const stores = [await open(t, dir), await open(t, dir)];
    const allocators = stores.map((s) => new GoPveQemuAllocator(s.allocations, { gateway: '127.77.0.1' }));
    const slots = allocators[0]!.candidates().length;
    assert.equal(slots, 155);
    const settled = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => allocators[i % 2]!.allocate({ owner: `op-${i}` })),
    );
    const won = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const lost = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
    assert.equal(won.length, slots);
    assert.equal(lost.length, 200 - slots);
    assert.ok(lost.every((e) => e instanceof ExhaustedError));
    assert.equal(new Set(won.map((w) => w.vmid)).size, slots);
    assert.ok(won.every((w) => w.ipv4 === `127.77.0.${w.vmid}`));
    const held = await stores[1]!.allocations.list();
    assert.equal(held.filter((h) => h.pool === 'vmid').length, slots);
    assert.equal(held.filter((h) => h.pool === 'ipv4:127.77.0.0/24').length, slots);
  });

  it('two processes on one file never hand out one value twice', async (t) => {
    const dir = dataDir();
    const store = await open(t, dir);
    const child = await startChild(dir, 100);
    const [mine, theirs] = await Promise.all([
      Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.allocations.allocate({ pool: 'p', owner: `parent-${i}`, candidates: CANDIDATES }),
        ),
      ),
      child.go(),
    ]);
    const values = [...mine.map((m) => m?.value), ...theirs];
    assert.ok(values.every((v) => typeof v === 'string'));
    assert.equal(new Set(values).size, 200);
    assert.equal((await store.allocations.list({ pool: 'p' })).length, 200);
  });
});

/**
 * A second process with its own store on the same file. It opens the store, says `ready`, and
 * allocates when told `go`, so that both processes allocate at the same time.
 */
async function startChild(dir: string, count: number): Promise<{ go(): Promise<(string | null)[]> }> {
  const script = join(dir, 'child.mts');
  const storeModule = new URL('../src/store/sql-store.ts', import.meta.url).href;
  await writeFile(
    script,
    `import { openStore } from ${JSON.stringify(storeModule)};
import { once } from 'node:events';
const store = await openStore({ dataDir: ${JSON.stringify(dir)} });
process.stdout.write('ready\\n');
await once(process.stdin, 'data');
const candidates = Array.from({ length: 1000 }, (_, i) => String(i));
const got = await Promise.all(Array.from({ length: ${count} }, (_, i) =>
  store.allocations.allocate({ pool: 'p', owner: 'child-' + i, candidates })));
await store.close();
process.stdout.write(JSON.stringify(got.map((g) => g?.value ?? null)) + '\\n');
process.stdin.destroy();
`,
  );
  const repo = fileURLToPath(new URL('../../..', import.meta.url));
  const proc = spawn(process.execPath, ['--conditions=vmplane-source', '--import', 'tsx', script], {
    cwd: repo,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));
  await new Promise<void>((resolve, reject) => {
    const check = () => (out.includes('ready\n') ? resolve() : undefined);
    proc.stdout.on('data', check);
    exited.then(() => reject(new Error(`child exited before it was ready: ${err}`)));
  });
  return {
    async go() {
      proc.stdin.write('go\n');
      const code = await exited;
      assert.equal(code, 0, err);
      const last = out.trim().split('\n').at(-1) ?? '';
      return JSON.parse(last) as (string | null)[];
    },
  };
}
