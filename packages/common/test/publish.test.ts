import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const packages: Record<string, string[]> = {
  common: ['VmplaneError', 'path', 'deadline'],
  lxd: ['LxdClient', 'LxdError', 'SimpleStreamsClient'],
  proxmox: ['ProxmoxClient', 'ProxmoxError'],
  'proxmox-sim': ['startSimulator'],
};

/** What a user gets from npm: the built dist/ through the exports map, without our source condition. */
for (const [name, names] of Object.entries(packages)) {
  test(`@vmplane/${name} imports from its built dist/ and packs its types`, async () => {
    const script = `const m = await import('@vmplane/${name}'); console.log(JSON.stringify(${JSON.stringify(names)}.filter((n) => !(n in m))))`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    assert.deepEqual(JSON.parse(stdout), [], `missing exports from dist of @vmplane/${name}`);
    const manifest = JSON.parse(await readFile(join(root, 'packages', name, 'package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
    };
    assert.equal(manifest.exports['.']?.types, './dist/index.d.ts');
    // The dist/ that `npm test` just built; --ignore-scripts, so that `prepack` does not rebuild it
    // under the other tests (pack-install.test.ts packs for real, from a clean clone).
    const { stdout: packed } = await run(
      'npm',
      ['pack', '--dry-run', '--json', '--ignore-scripts', '--workspace', `packages/${name}`],
      { cwd: root },
    );
    const files = (JSON.parse(packed) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    assert.ok(
      files.includes('dist/index.d.ts') && files.includes('dist/index.js') && files.includes('README.md'),
      files.join(', '),
    );
  });
}
