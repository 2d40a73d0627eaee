import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../../../tools/readme-examples.js';

/*
 * The set-up's check of the machine (scripts/system-requirements.sh) run under a PATH made for
 * the test: a folder of links to the real programs, less the one a test removes, so that a missing
 * program is simulated without uninstalling anything.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = join(root, 'scripts', 'system-requirements.sh');
const BASH = '/bin/bash';

interface Requirement {
  what: string;
  pkg: string;
  who: string;
}

const requirements: Requirement[] = execFileSync(BASH, [script, '--list'], { encoding: 'utf8' })
  .split('\n')
  .filter(Boolean)
  .map((row) => {
    const [what = '', pkg = '', who = ''] = row.split('|');
    return { what, pkg, who };
  });
/** Found through PATH (the others are absolute paths or Python modules). */
const programs = requirements.filter((r) => !r.what.startsWith('/') && !r.what.startsWith('py:'));

function check(path: string, env: NodeJS.ProcessEnv = {}) {
  return runProcess(BASH, [script], { env: { PATH: path, ...env }, timeout: 60_000 });
}

/** Where the real program is, on this process's PATH. */
function locate(r: Requirement): string {
  try {
    return execFileSync(BASH, ['-c', 'command -v "$1"', 'locate', r.what], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${r.what} (Debian package ${r.pkg}) is not installed here: run scripts/setup.sh first`);
  }
}

/** A stand-in for Debian's python3 that answers every import with `status`. */
async function fakePython(path: string, status: number): Promise<string> {
  await writeFile(path, `#!/bin/sh\nexit ${status}\n`);
  await chmod(path, 0o755);
  return path;
}

describe('the system check', () => {
  let dir = '';
  /** A folder per removed program, each with links to every other one. */
  const pathWithout = new Map<string, string>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmpt-syscheck-'));
    const located = new Map(programs.map((p) => [p.what, locate(p)]));
    for (const removed of [undefined, ...programs.map((p) => p.what)]) {
      const bin = join(dir, removed ?? 'complete');
      await mkdir(bin);
      for (const [program, real] of located) if (program !== removed) await symlink(real, join(bin, basename(program)));
      pathWithout.set(removed ?? '', bin);
    }
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the table names a package and who needs it for every row, dnsmasq-base among them', () => {
    assert.ok(requirements.length >= 10, `${requirements.length} rows`);
    for (const r of requirements) {
      assert.match(r.pkg, /^[a-z0-9][a-z0-9+.-]+$/, `package of ${r.what}`);
      assert.ok(r.who.length > 3, `who needs ${r.what}`);
    }
    assert.ok(requirements.some((r) => r.what === 'dnsmasq' && r.pkg === 'dnsmasq-base'));
  });

  test('the set-up installs exactly the packages the table names', async () => {
    const r = await runProcess(BASH, [
      '-c',
      `source "${root}/scripts/lib.sh" && printf '%s\\n' "\${SYSTEM_PACKAGES[@]}"`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), [...new Set(requirements.map((q) => q.pkg))]);
  });

  test('passes on this machine, and under a PATH holding only links to the programs', async () => {
    const real = await check(process.env.PATH ?? '');
    assert.equal(real.code, 0, real.stderr);
    const linked = await check(pathWithout.get('')!);
    assert.equal(linked.code, 0, linked.stderr);
  });

  test('fails for each missing program, naming it, its Debian package and who needs it', async () => {
    // The Python rows are the next test's; here they pass quickly.
    const python = await fakePython(join(dir, 'python-with-modules'), 0);
    for (const p of programs) {
      const r = await check(pathWithout.get(p.what)!, { VMPLANE_SYSTEM_PYTHON: python });
      assert.equal(r.code, 1, `without ${p.what}: exit ${r.code}\n${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('  '));
      assert.equal(lines.length, 1, `only ${p.what} is reported missing:\n${r.stderr}`);
      assert.match(lines[0] ?? '', new RegExp(`^  ${p.what} +from Debian package ${p.pkg} +needed by `));
      assert.ok(lines[0]?.includes(p.who), lines[0]);
      assert.match(r.stderr, new RegExp(`apt-get install --no-install-recommends ${p.pkg}\\n`));
    }
  });

  test('fails when the Python modules are missing, naming both packages once', async () => {
    const python = await fakePython(join(dir, 'python-without-modules'), 1);
    const r = await check(pathWithout.get('')!, { VMPLANE_SYSTEM_PYTHON: python });
    assert.equal(r.code, 1, r.stderr);
    const modules = requirements.filter((q) => q.what.startsWith('py:'));
    assert.ok(modules.length >= 2);
    for (const m of modules) assert.match(r.stderr, new RegExp(`^  ${m.what} +from Debian package ${m.pkg} `, 'm'));
    assert.match(r.stderr, new RegExp(`--no-install-recommends ${modules.map((m) => m.pkg).join(' ')}\\n`));
  });
});
