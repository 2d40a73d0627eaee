import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../../../tools/readme-examples.js';
import { parseCli } from '../src/cli.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

test('the bin starts, prints URL, credentials and modelled paths, answers /version, and stops on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    [
      '--conditions=vmplane-source',
      '--import',
      'tsx',
      join(pkg, 'src', 'bin.ts'),
      '--nodes',
      '2',
      '--guests',
      '5',
      '--port',
      '0',
    ],
    { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/[^\s]+)/.exec(out);
        if (m && out.includes('every other operation')) resolve(m[1] as string);
      });
      child.on('exit', (code) => reject(new Error(`bin exited early (${code}): ${out}`)));
    });
    const token = /^header:\s+Authorization: (PVEAPIToken=\S+)$/m.exec(out)?.[1];
    assert.ok(token, out);
    assert.match(out, /^password:\s+vmplane$/m);
    assert.match(out, /^ {2}POST \/nodes\/\{node\}\/qemu\/\{vmid\}\/status\/start$/m);
    const res = await fetch(`${url}/api2/json/version`, { headers: { Authorization: token } });
    assert.equal(res.status, 200);
    const nodes = (await (await fetch(`${url}/api2/json/nodes`, { headers: { Authorization: token } })).json()) as {
      data: unknown[];
    };
    assert.equal(nodes.data.length, 2);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    await exited;
  }
});

test('every numeric flag is checked: integer, in range; a bad one is named and nothing starts', () => {
  const bad: Array<[string, string]> = [
    ['--nodes', 'abc'],
    ['--nodes', '0'],
    ['--nodes', '1.5'],
    ['--nodes', ''],
    ['--guests', '-1'],
    ['--guests', '1e3'],
    ['--port', '65536'],
    ['--port', '0x50'],
    ['--latency', 'fast'],
    ['--task-duration', ' 10'],
    ['--boot-delay', '-5'],
    ['--guest-ssh-port', '70000'],
  ];
  for (const [flag, value] of bad) {
    const r = parseCli([`${flag}=${value}`]);
    assert.equal(r.kind, 'error', `${flag} ${JSON.stringify(value)}`);
    assert.match(
      r.kind === 'error' ? r.message : '',
      new RegExp(`^${flag} must be an integer from \\d+ to \\d+, got `),
    );
  }
  const unknown = parseCli(['--nodez', '3']);
  assert.equal(unknown.kind, 'error');
  const ok = parseCli([
    '--nodes',
    '2',
    '--guests',
    '0',
    '--port',
    '0',
    '--task-duration',
    '5',
    '--guest-ssh-port',
    '0',
    '--schema',
    'x.js',
  ]);
  assert.deepEqual(ok, {
    kind: 'run',
    quiet: false,
    options: {
      nodes: 2,
      guests: 0,
      port: 0,
      host: '127.0.0.1',
      tls: false,
      latency: 0,
      taskDuration: 5,
      bootDelayMs: 200,
      guestSshPort: 0,
      schemaPath: 'x.js',
    },
  });
});

test('the bin exits 2 with the message for a bad flag, and 1 for a schema it cannot read', async () => {
  const run = (args: string[]) =>
    runProcess(
      process.execPath,
      ['--conditions=vmplane-source', '--import', 'tsx', join(pkg, 'src', 'bin.ts'), ...args],
      {
        cwd: pkg,
        timeout: 30_000,
      },
    );
  const nodes = await run(['--nodes', 'abc', '--port', '0']);
  assert.equal(nodes.code, 2);
  assert.match(nodes.stderr, /^vmplane-proxmox-sim: --nodes must be an integer from 1 to 200, got "abc"\nusage:/);
  assert.equal(nodes.stdout, '');
  const unknown = await run(['--nodez', '3']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown option '--nodez'/);
  const schema = await run(['--schema', '/nonexistent/apidoc.js', '--port', '0']);
  assert.equal(schema.code, 1);
  assert.match(schema.stderr, /PVE schema not found at \/nonexistent\/apidoc\.js \(schemaPath\)/);
});
