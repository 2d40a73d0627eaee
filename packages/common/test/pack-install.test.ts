import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { type ExampleRun, readmeExamples, runInstalledExample, runProcess } from '../../../tools/readme-examples.js';
import { removeLeftoverLogs } from '../../lxd/test/support/lxd.js';

/*
 * What a user gets from npm, checked the way a user would: the repository's HEAD cloned into a
 * temporary folder (so no dist/ and nothing uncommitted; `prepack` must build), `npm ci`, `npm pack`
 * of every package, the tarballs installed into an empty project, and there each README's first
 * example run and type-checked strictly against the installed types.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PACKAGES = ['common', 'lxd', 'proxmox', 'proxmox-sim', 'core', 'server', 'cli'] as const;
type PackageName = (typeof PACKAGES)[number];
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');

interface PackedManifest {
  name: string;
  version: string;
  license?: string;
  main?: string;
  types?: string;
  files?: string[];
  bin?: Record<string, string>;
  exports?: unknown;
  repository?: { type?: string; url?: string; directory?: string };
  publishConfig?: { access?: string };
  dependencies?: Record<string, string>;
}

interface Packed {
  tarball: string;
  /** Paths inside the tarball, without npm's `package/` prefix. */
  files: string[];
  manifest: PackedManifest;
}

let work = '';
let project = '';
const packed = new Map<PackageName, Packed>();

/** Runs a step of the set-up; a failure carries the step's output. */
async function step(what: string, command: string, args: readonly string[], cwd: string, timeout: number) {
  const r = await runProcess(command, args, { cwd, env: npmEnv(), timeout });
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r;
}

/**
 * This process's environment without what would make the check dishonest: no specs directory or
 * schema path (a user has neither), no Node options (the test runner's source condition), no
 * npm_* variables of the `npm test` that started us (they would point npm at this repository).
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k.startsWith('VMPLANE_SPECS') || k === 'VMPLANE_PVE_SCHEMA' || k === 'NODE_OPTIONS')
      continue;
    env[k] = v;
  }
  return env;
}

/** Every string a package.json's `exports` map points at, with the conditions leading to it. */
function exportTargets(value: unknown, via: string[] = []): { path: string; via: string }[] {
  if (typeof value === 'string') return [{ path: value, via: via.join(' > ') || '.' }];
  if (Array.isArray(value)) return value.flatMap((v) => exportTargets(v, via));
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => exportTargets(v, [...via, k]));
  return [];
}

const inTarball = (p: Packed, target: string) => p.files.includes(target.replace(/^\.\//, ''));

/** The packages (not node: builtins, not relative files) that the .d.ts files under `dir` import. */
async function importedPackages(dir: string): Promise<Set<string>> {
  const found = new Set<string>();
  const entries = await readdir(dir, { recursive: true });
  for (const entry of entries) {
    if (!entry.endsWith('.d.ts')) continue;
    const text = await readFile(join(dir, entry), 'utf8');
    // TypeScript's own scanner: imports, re-exports and import() types, never text in comments.
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const parts = spec.split('/');
      found.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec));
    }
  }
  return found;
}

/** Whether an installed package brings its own declarations. */
async function shipsTypes(dir: string): Promise<boolean> {
  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  if (manifest.types || manifest.typings || JSON.stringify(manifest.exports ?? {}).includes('"types"')) return true;
  if ((await readdir(dir)).includes('index.d.ts')) return true;
  // Types beside the code an export points at (kysely's dist/esm/index.d.ts next to index.js).
  const target = exportTargets(manifest.exports).find((t) => t.path.endsWith('.js'))?.path;
  if (!target) return false;
  return readFile(join(dir, target.replace(/\.js$/, '.d.ts'))).then(
    () => true,
    () => false,
  );
}

describe('the packages as published: packed from a clean clone, installed into an empty project', () => {
  before(async () => {
    // The version the repository's lock installed, so that it is in npm's cache.
    const typesNodeVersion = (
      JSON.parse(await readFile(join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    work = await mkdtemp(join(tmpdir(), 'vmplane-pack-'));
    const clone = join(work, 'repo');
    const tarballs = join(work, 'tarballs');
    project = join(work, 'project');
    await mkdir(tarballs);
    await mkdir(project);
    await step('git clone of HEAD', 'git', ['clone', '-q', '--no-hardlinks', root, clone], work, 60_000);
    // --offline: tests send nothing beyond loopback. The set-up's own `npm ci` filled npm's cache
    // with every package the lock names, which is all that the clone and the consumer need.
    await step('npm ci in the clone', 'npm', ['ci', '--no-audit', '--no-fund', '--offline'], clone, 240_000);
    const workspaces = PACKAGES.flatMap((p) => ['-w', `packages/${p}`]);
    const pack = await step(
      'npm pack in the clone (prepack builds dist/)',
      'npm',
      ['pack', '--json', '--pack-destination', tarballs, ...workspaces],
      clone,
      300_000,
    );
    const report = JSON.parse(pack.stdout) as { name: string; filename: string }[];
    for (const name of PACKAGES) {
      const entry = report.find((r) => r.name === `@vmplane/${name}`);
      assert.ok(entry, `npm pack made no tarball for @vmplane/${name}: ${pack.stdout}`);
      const tarball = join(tarballs, entry.filename);
      // The tarball itself, not npm's report of it.
      const list = await step('tar -t', 'tar', ['-tzf', tarball], work, 60_000);
      const files = list.stdout
        .split('\n')
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, ''));
      const manifest = JSON.parse(
        (await step('tar -x package.json', 'tar', ['-xOzf', tarball, 'package/package.json'], work, 60_000)).stdout,
      ) as PackedManifest;
      packed.set(name, { tarball, files, manifest });
    }
    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify(
        // npm 11 runs no install script unless allowed: a user of @vmplane/core allows
        // better-sqlite3's (its native build), as the core README says.
        { name: 'vmplane-consumer', private: true, type: 'module', allowScripts: { 'better-sqlite3': true } },
        null,
        2,
      )}\n`,
    );
    // All four tarballs at once, so @vmplane/common comes from its tarball and not from a registry;
    // @types/node as a TypeScript user would have it, for the type check of the examples.
    await step(
      'npm install of the tarballs',
      'npm',
      [
        'install',
        ...PACKAGES.map((p) => packed.get(p)!.tarball),
        `@types/node@${typesNodeVersion}`,
        '--no-audit',
        '--no-fund',
        '--offline',
      ],
      project,
      240_000,
    );
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('each tarball holds the built dist/, its types, README, LICENSE, all it lists in files, and no tests', () => {
    const problems: string[] = [];
    for (const name of PACKAGES) {
      const p = packed.get(name)!;
      for (const f of ['dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE', 'package.json'])
        if (!p.files.includes(f)) problems.push(`@vmplane/${name} lacks ${f}`);
      // What `files` lists must have made it in: a file or folder missing from the clone is dropped silently.
      for (const listed of p.manifest.files ?? [])
        if (!p.files.some((f) => f === listed || f.startsWith(`${listed}/`)))
          problems.push(`@vmplane/${name} lists ${listed} in files, but the tarball has none of it`);
      for (const f of p.files)
        if (/(^|\/)(test|bench|\.cache)\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f))
          problems.push(`@vmplane/${name} ships ${f}`);
    }
    assert.deepEqual(problems, []);
  });

  test('each manifest is publishable: repository, public access, licence, real versions of its siblings', () => {
    for (const name of PACKAGES) {
      const m = packed.get(name)!.manifest;
      assert.equal(m.name, `@vmplane/${name}`);
      assert.equal(m.license, 'Apache-2.0');
      assert.equal(m.publishConfig?.access, 'public', `@vmplane/${name} publishConfig.access`);
      assert.match(m.repository?.url ?? '', /^git\+https:\/\/.+\.git$/, `@vmplane/${name} repository.url`);
      assert.equal(m.repository?.directory, `packages/${name}`);
      for (const [dep, range] of Object.entries(m.dependencies ?? {})) {
        if (!dep.startsWith('@vmplane/')) continue;
        const sibling = packed.get(dep.slice('@vmplane/'.length) as PackageName);
        assert.ok(sibling, `@vmplane/${name} depends on ${dep}, which is not one of the packed packages`);
        assert.equal(range, sibling.manifest.version, `@vmplane/${name} pins ${dep} to the version packed with it`);
      }
    }
  });

  test('every export condition, main, types and bin points at a file in the tarball', () => {
    const dangling: string[] = [];
    for (const name of PACKAGES) {
      const p = packed.get(name)!;
      const targets = [
        ...exportTargets(p.manifest.exports),
        ...(p.manifest.main ? [{ path: p.manifest.main, via: 'main' }] : []),
        ...(p.manifest.types ? [{ path: p.manifest.types, via: 'types' }] : []),
        ...Object.entries(p.manifest.bin ?? {}).map(([k, v]) => ({ path: v, via: `bin ${k}` })),
      ];
      assert.ok(targets.length >= 3, `@vmplane/${name} declares its entry points`);
      for (const t of targets) if (!inTarball(p, t.path)) dangling.push(`@vmplane/${name}: ${t.via} -> ${t.path}`);
    }
    assert.deepEqual(dangling, [], 'entry points at files the tarballs do not ship');
  });

  test('every module the published types import is a dependency, with types of its own or from @types', async () => {
    const problems: string[] = [];
    for (const name of PACKAGES) {
      const installed = join(project, 'node_modules', '@vmplane', name);
      const deps = packed.get(name)!.manifest.dependencies ?? {};
      const imported = await importedPackages(join(installed, 'dist')).catch((error: unknown) => {
        problems.push(`@vmplane/${name}: no readable dist/ (${String(error)})`);
        return new Set<string>();
      });
      for (const spec of imported) {
        if (!(spec in deps)) {
          problems.push(`@vmplane/${name}: its types import ${spec}, which is not a dependency`);
          continue;
        }
        const typesPackage = `@types/${spec.replace(/^@([^/]+)\//, '$1__')}`;
        if (!(await shipsTypes(join(project, 'node_modules', spec))) && !(typesPackage in deps))
          problems.push(
            `@vmplane/${name}: its types import ${spec}, which has no types; ${typesPackage} is not a dependency`,
          );
      }
    }
    assert.deepEqual(problems, []);
  });

  const examples = new Map<PackageName, string>();

  for (const name of PACKAGES) {
    test(`@vmplane/${name}: the README's first example runs against the installed package`, async () => {
      // The README as shipped in the tarball, not the working tree's.
      const readme = join(project, 'node_modules', '@vmplane', name, 'README.md');
      const [first] = await readmeExamples(readme);
      assert.ok(first, `the README of @vmplane/${name} has no runnable example`);
      const file = `readme-${name}.mts`;
      examples.set(name, file);
      let run: ExampleRun | undefined;
      try {
        run = await runInstalledExample(project, file, first, { env: npmEnv(), timeout: 120_000 });
      } finally {
        const pid = run?.pid;
        if (pid !== undefined)
          removeLeftoverLogs((entry) => entry.startsWith('vmpt-readme-') && entry.endsWith(`-${pid}`));
      }
      assert.equal(run.code, 0, `README line ${first.line}: exit ${run.code}\n${run.stdout}\n${run.stderr}`);
    });
  }

  test('the examples type-check strictly against the installed types, ws included', async () => {
    const files = PACKAGES.map((p) => examples.get(p)).filter((f) => f !== undefined);
    assert.equal(files.length, PACKAGES.length, 'every example was written by the tests above');
    assert.ok(
      (await readdir(join(project, 'node_modules', '@types'))).includes('ws'),
      '@types/ws came with the install',
    );
    // Library checking stays on: the published .d.ts import `ws`, and without @types/ws that is
    // an error (TS7016) in them rather than a silent `any`.
    const r = await runProcess(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--skipLibCheck',
        'false',
        '--types',
        'node',
        ...files,
      ],
      { cwd: project, env: npmEnv(), timeout: 300_000 },
    );
    assert.equal(r.code, 0, `tsc:\n${r.stdout}\n${r.stderr}`);
  });
});
