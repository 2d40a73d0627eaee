import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runCli } from './support/io.js';

// A server that counts what reaches it: a refused argument must send nothing.
let requests = 0;
const server = createServer((_req, res) => {
  requests++;
  res.writeHead(500).end();
});
let env: NodeJS.ProcessEnv = {};
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  env = { VMPLANE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, VMPLANE_TOKEN: 'vmp_test' };
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const refused: [string, string[], RegExp][] = [
  ['install without --os', ['install', '--version', '12'], /--os is required/],
  ['install without --version', ['install', '--os', 'debian'], /--version is required/],
  [
    'install --cpu that is not a number',
    ['install', '--os', 'debian', '--version', '12', '--cpu', 'two'],
    /--cpu must be a positive integer/,
  ],
  [
    'install --ram 0',
    ['install', '--os', 'debian', '--version', '12', '--ram', '0'],
    /--ram must be a positive integer/,
  ],
  ['install --disk 20GB', ['install', '--os', 'debian', '--version', '12', '--disk', '20GB'], /--disk must be a size/],
  [
    'install --pubkey that is missing',
    ['install', '--os', 'd', '--version', '1', '--pubkey', '/nonexistent/k.pub'],
    /cannot read --pubkey/,
  ],
  [
    'install --passwd-stdin with nothing piped',
    ['install', '--os', 'd', '--version', '1', '--passwd-stdin'],
    /stdin was empty/,
  ],
  [
    'token create with a bad scope',
    ['token', 'create', '--data-dir', '/tmp/x', '--scope', 'root'],
    /Allowed choices are read, write, admin/,
  ],
  ['token create without --scope', ['token', 'create', '--data-dir', '/tmp/x'], /--scope/],
  ['token create without --data-dir', ['token', 'create', '--scope', 'read'], /--data-dir/],
  ['serve without --data-dir', ['serve', '--port', '0'], /--data-dir/],
  ['serve with a bad port', ['serve', '--port', '70000', '--data-dir', '/tmp/x'], /--port must be 0 to 65535/],
  ['exec without a command', ['exec', 'web-1'], /give the command after --/],
  ['exec with a bad -e', ['exec', 'web-1', '-e', 'NOEQUALS', '--', 'true'], /-e takes KEY=VALUE/],
  ['exec -t without a terminal', ['exec', '-t', 'web-1', '--', 'sh'], /-t needs a terminal/],
  ['logs --tail that is not a number', ['logs', '--tail', 'ten', 'web-1'], /--tail must be a number/],
  [
    'logs --source that does not exist',
    ['logs', '--source', 'kernel', 'web-1'],
    /--source must be app, vmm or hypeman/,
  ],
  ['rm with a dot-dot id', ['rm', '..'], /not a valid id/],
  ['an unknown command', ['launch'], /unknown command 'launch'/],
  ['an unknown option', ['list', '--colour'], /unknown option '--colour'/],
];

describe('argument validation', () => {
  for (const [name, argv, message] of refused) {
    it(`refuses ${name} with exit code 2 and sends nothing`, async () => {
      const before = requests;
      const r = await runCli(argv, env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
      assert.equal(requests, before, 'no request reached the server');
    });
  }

  it('--help exits 0 and names every command', async () => {
    const r = await runCli(['--help'], env);
    assert.equal(r.code, 0);
    for (const c of ['serve', 'token', 'install', 'list', 'exec', 'logs', 'rm'])
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });
});

describe('errors rendered for people', () => {
  it('turns a refused connection into a hint to start vmplane serve (exit 3)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await runCli(['list'], { VMPLANE_URL: `http://127.0.0.1:${port}` });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot reach the vmplane server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.match(r.stderr, /hint: start one with `vmplane serve/);
  });

  it("shows hypeman's {code, message} as `error: <message> (<code>)` with the status's exit code", async () => {
    const s = createServer((_req, res) => {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"code":"not_found","message":"resource not found"}');
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      const r = await runCli(['rm', 'nope'], { VMPLANE_URL: `http://127.0.0.1:${(s.address() as AddressInfo).port}` });
      assert.equal(r.code, 5);
      assert.equal(r.stderr, 'error: resource not found (not_found)\n');
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  it('never prints the token, even when the server refuses it', async () => {
    const s = createServer((_req, res) => {
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end('{"code":"Unauthorized","message":"invalid token"}');
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      const secret = 'vmp_thisIsTheSecretTokenValue0123456789abcdefgh';
      const r = await runCli(['list'], {
        VMPLANE_URL: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
        VMPLANE_TOKEN: secret,
      });
      assert.equal(r.code, 4);
      assert.match(r.stderr, /error: invalid token \(Unauthorized\)/);
      assert.ok(!(r.stdout + r.stderr).includes(secret));
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
});
