import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

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
