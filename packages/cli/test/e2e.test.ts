/**
 * End to end: `vmplane serve` as a child process on a free loopback port with a temporary data
 * directory, and the CLI's commands as child processes against it, on the local LXD daemon with
 * the busybox test image. Everything made is named `vmpt-cli-<pid>-...` and deleted in `after`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, vmplane } from './support/child.js';
import { deleteInstances, lxc, lxdAvailable, type Served, startServe } from './support/serve.js';

const prefix = `vmpt-cli-${process.pid}`;
// The server names an LXD image `<os>/<version>`; this alias gives the busybox image that name.
const OS = prefix;
const VERSION = '1';

/**
 * The server is started before the suite, so that a server which cannot run yet (a dependency of
 * @vmplane/server still being written says `this @vmplane/core has no ...`) skips the suite with
 * its reason instead of failing the CLI's tests. Any other failure to start fails the suite.
 */
let served: Served | undefined;
let skip: string | false = false;
const server: Record<string, unknown> = await import('@vmplane/server');
if (!('startServer' in server)) skip = '@vmplane/server does not export startServer yet';
else if (!(await lxdAvailable())) skip = 'no LXD daemon answers here';
else {
  try {
    served = await startServe();
  } catch (error) {
    const m = /this @vmplane\/core (?:has|exports) no [^\n]*/.exec((error as Error).message);
    if (!m) throw error;
    skip = `the server cannot start yet: ${m[0]}`;
  }
}

describe('vmplane end to end (serve, token, install, list, exec, logs, rm, Ctrl-C)', { skip }, () => {
  const s = () => served as Served;
  const env = () => s().env;

  before(async () => {
    const { stdout } = await lxc(['image', 'info', 'vmplane-busybox']);
    const fingerprint = /Fingerprint: (\w+)/.exec(stdout)?.[1];
    assert.ok(fingerprint, 'the vmplane-busybox image exists (scripts/lib.sh builds it)');
    await lxc(['image', 'alias', 'create', `${OS}/${VERSION}`, fingerprint]);
  });

  after(async () => {
    const code = served ? await served.stop() : 0;
    await deleteInstances(prefix);
    await lxc(['image', 'alias', 'delete', `${OS}/${VERSION}`]).catch(() => undefined);
    assert.equal(code, 0, 'SIGTERM stops the server cleanly');
  });

  it('serve printed its loopback URL and wrote the client config', () => {
    assert.match(s().url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(s().output(), /client config/);
  });

  it('token create prints a token the server accepts', async () => {
    const r = await vmplane(
      ['token', 'create', '--data-dir', s().dataDir, '--scope', 'read', '--name', `${prefix}-ro`],
      {
        env: env(),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    const list = await vmplane(['list', '--json'], {
      env: { ...env(), VMPLANE_URL: s().url, VMPLANE_TOKEN: token },
    });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(Array.isArray(JSON.parse(list.stdout)));
  });

  const name = `${prefix}-a`;

  it('install streams the stages in order and exits 0', async () => {
    const r = await vmplane(['install', '--os', OS, '--version', VERSION, '--name', name], { env: env() });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const steps = r.stdout
      .split('\n')
      .map((l) => /^\[([^\]]+)\]/.exec(l)?.[1])
      .filter((s): s is string => s !== undefined);
    const order = ['preparation > checking VMID', 'VM creation > creating VM', 'VM initialization > finalizing'];
    const at = order.map((s) => steps.indexOf(s));
    assert.ok(
      at.every((i) => i >= 0),
      `every stage shown: ${steps.join(', ')}`,
    );
    assert.deepEqual(
      [...at].sort((a, b) => a - b),
      at,
      'in order',
    );
  });

  it('list --json shows the instance Running on lxd; the table too', async () => {
    const r = await vmplane(['list', '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const mine = (JSON.parse(r.stdout) as { name: string; state: string; provider?: string }[]).find(
      (i) => i.name === name,
    );
    assert.ok(mine, r.stdout);
    assert.equal(mine.state, 'Running');
    const table = await vmplane(['list'], { env: env() });
    assert.match(table.stdout, /^ID\s+NAME\s+PROVIDER\s+STATE\s+IP\s+IMAGE\n/);
    assert.match(table.stdout, new RegExp(`${name}\\s`));
  });

  it('exec -- echo hi prints hi and exits 0; a failing command gives its exit code', async () => {
    const r = await vmplane(['exec', name, '--', 'echo', 'hi'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const failing = await vmplane(['exec', name, '--', 'sh', '-c', 'echo out; exit 3'], { env: env() });
    assert.equal(failing.code, 3, failing.stderr);
    assert.equal(failing.stdout, 'out\n');
    const piped = await vmplane(['exec', name, '--', 'head', '-n', '1'], { env: env(), input: 'from stdin\n' });
    assert.equal(piped.stdout, 'from stdin\n');
  });

  it("logs --source hypeman prints the instance's operations log", async () => {
    const r = await vmplane(['logs', '--source', 'hypeman', '--tail', '200', name], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /start VM installation|VM creation/);
  });

  it('rm deletes it; exec on it then is not found (exit 5)', async () => {
    const r = await vmplane(['rm', name], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const list = await vmplane(['list', '--json'], { env: env() });
    assert.ok(!(JSON.parse(list.stdout) as { name: string }[]).some((i) => i.name === name));
    const gone = await vmplane(['exec', name, '--', 'true'], { env: env() });
    assert.equal(gone.code, 5, gone.stderr);
    assert.match(gone.stderr, /^error: .*\(not_found\)/);
  });

  it('Ctrl-C during an install cancels it: the undo is shown, nothing is left, exit 130', async () => {
    const cancelled = `${prefix}-c`;
    const child = spawn(process.execPath, [BIN, 'install', '--os', OS, '--version', VERSION, '--name', cancelled], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      // Interrupt as soon as the first stage shows: the operation exists and is still running.
      if (!sent && child.pid !== undefined) {
        sent = true;
        process.kill(child.pid, 'SIGINT');
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 130, `${stdout}\n${stderr}`);
    assert.match(stderr, /cancel requested/);
    assert.doesNotMatch(stdout, /VM installation completed/);
    assert.match(stdout, /^\[rollback > [^\]]+\] \[\+\] /m, 'the undo stages are shown');
    assert.match(stdout.trimEnd().split('\n').at(-1) ?? '', /\[-\] .*cancelled/, 'the last event is an honest error');
    const list = await vmplane(['list', '--json'], { env: env() });
    assert.ok(!(JSON.parse(list.stdout) as { name: string }[]).some((i) => i.name === cancelled), list.stdout);
    const { stdout: lxdList } = await lxc(['list', '--format', 'json']);
    assert.ok(!(JSON.parse(lxdList) as { name: string }[]).some((i) => i.name === cancelled), 'no guest left on LXD');
  });

  it('serve stops cleanly when its parent dies without passing SIGTERM on (npx under sh -c)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmpt-cli-orphan-'));
    try {
      // The trailing `:` keeps sh from exec-ing node, so sh stays the parent, as npm's `sh -c` does.
      const script = `"${process.execPath}" "${BIN}" serve --port 0 --data-dir "${join(dir, 'data')}" --no-client-config; :`;
      const sh = spawn('sh', ['-c', script], { env: env(), cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      sh.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      sh.stderr.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      // The pipes close when the last holder, the node child, is gone.
      const closed = new Promise<void>((resolve) => sh.stdout.on('close', () => resolve()));
      await new Promise<void>((resolve) => {
        const check = () => (/listening on/.test(out) ? resolve() : setTimeout(check, 50));
        check();
      });
      if (sh.pid !== undefined) process.kill(sh.pid, 'SIGKILL');
      await closed;
      assert.match(out, /parent process \(npx\) is gone: stopping/);
      assert.match(out, /\nstopped\n/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
