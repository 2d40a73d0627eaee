import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InvalidArgumentError, LxdClient } from '@vmplane/lxd';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';

/** A unix socket that counts the connections made to it and answers none: anything sent shows. */
async function countingSocket(): Promise<{ path: string; connections: () => number; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vmpt-count-'));
  const path = join(dir, 'lxd.socket');
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    connections: () => count,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Each class of bad input, with the argument the refusal must name. */
const bad: Array<{ what: string; argument: string; opts: Record<string, unknown> }> = [
  { what: 'no command', argument: 'command', opts: { command: [] } },
  { what: 'a command that is not an array', argument: 'command', opts: { command: 'ls' } },
  { what: "['']", argument: 'command', opts: { command: [''] } },
  { what: 'a non-string argument', argument: 'command', opts: { command: ['echo', 1] } },
  { what: 'NUL in an argument', argument: 'command', opts: { command: ['echo', 'a\0b'] } },
  { what: 'a lone surrogate', argument: 'command', opts: { command: ['echo', '\ud800'] } },
  { what: "'=' in an env key", argument: 'env', opts: { command: ['env'], env: { 'A=B': 'c' } } },
  { what: 'an empty env key', argument: 'env', opts: { command: ['env'], env: { '': 'c' } } },
  { what: 'NUL in an env key', argument: 'env', opts: { command: ['env'], env: { 'A\0': 'c' } } },
  { what: 'NUL in an env value', argument: 'env', opts: { command: ['env'], env: { A: 'x\0y' } } },
  { what: 'an env value that is not a string', argument: 'env', opts: { command: ['env'], env: { A: 1 } } },
  { what: 'env as an array', argument: 'env', opts: { command: ['env'], env: ['A=1'] } },
  { what: 'a relative cwd', argument: 'cwd', opts: { command: ['pwd'], cwd: 'tmp' } },
  { what: 'an empty cwd', argument: 'cwd', opts: { command: ['pwd'], cwd: '' } },
  { what: 'NUL in cwd', argument: 'cwd', opts: { command: ['pwd'], cwd: '/tmp\0' } },
  { what: 'a negative uid', argument: 'user', opts: { command: ['id'], user: -1 } },
  { what: 'a fractional uid', argument: 'user', opts: { command: ['id'], user: 1.5 } },
  { what: 'uid 2^32-1 (runs as root)', argument: 'user', opts: { command: ['id'], user: 2 ** 32 - 1 } },
  { what: 'uid 2^32', argument: 'user', opts: { command: ['id'], user: 2 ** 32 } },
  { what: 'a uid as a string', argument: 'user', opts: { command: ['id'], user: '0' } },
  { what: 'a NaN gid', argument: 'group', opts: { command: ['id'], group: Number.NaN } },
  { what: 'a negative timeout', argument: 'timeout', opts: { command: ['true'], timeout: -1 } },
];

const badTerminal: Array<{ what: string; argument: string; opts: Record<string, unknown> }> = [
  { what: 'width 0', argument: 'width', opts: { command: ['sh'], width: 0 } },
  { what: 'a negative width', argument: 'width', opts: { command: ['sh'], width: -80 } },
  { what: 'a fractional height', argument: 'height', opts: { command: ['sh'], height: 24.5 } },
  { what: 'a huge width', argument: 'width', opts: { command: ['sh'], width: 65_536 } },
  { what: 'a NaN height', argument: 'height', opts: { command: ['sh'], height: Number.NaN } },
  { what: 'a width as a string', argument: 'width', opts: { command: ['sh'], width: '80' } },
];

const refusedAs = (argument: string) => (e: unknown) =>
  e instanceof InvalidArgumentError && e.argument === argument && e.backend === 'lxd';

describe('exec input is refused locally, before anything is sent', () => {
  let socket: Awaited<ReturnType<typeof countingSocket>>;
  let lxd: LxdClient;
  before(async () => {
    socket = await countingSocket();
    lxd = await LxdClient.connect({ socketPath: socket.path, skipGetServer: true, retry: { attempts: 1 } });
  });
  after(async () => {
    lxd.close();
    await socket.close();
  });

  for (const { what, argument, opts } of bad) {
    test(`${what}: refused as '${argument}' in every mode`, async () => {
      const o = opts as never;
      await assert.rejects(
        lxd.instances.exec('c1', { ...(opts as object), via: 'websockets' } as never),
        refusedAs(argument),
      );
      await assert.rejects(lxd.instances.exec('c1', o), refusedAs(argument));
      await assert.rejects(lxd.instances.execRecorded('c1', o), refusedAs(argument));
      await assert.rejects(lxd.instances.spawn('c1', o), refusedAs(argument));
      await assert.rejects(lxd.instances.execInteractive('c1', o), refusedAs(argument));
      assert.equal(socket.connections(), 0, 'a request was sent');
    });
  }

  for (const { what, argument, opts } of badTerminal) {
    test(`terminal size, ${what}: refused as '${argument}'`, async () => {
      await assert.rejects(lxd.instances.execInteractive('c1', opts as never), refusedAs(argument));
      assert.equal(socket.connections(), 0, 'a request was sent');
    });
  }

  test('stdin of the wrong type and an unknown via are refused', async () => {
    await assert.rejects(lxd.instances.exec('c1', { command: ['cat'], stdin: 5 as never }), refusedAs('stdin'));
    await assert.rejects(lxd.instances.exec('c1', { command: ['cat'], stdin: {} as never }), refusedAs('stdin'));
    await assert.rejects(lxd.instances.exec('c1', { command: ['cat'], via: 'ssh' as never }), refusedAs('via'));
    await assert.rejects(lxd.instances.exec('bad/name', { command: ['true'] }), refusedAs('name'));
    assert.equal(socket.connections(), 0, 'a request was sent');
  });

  test('the counting socket does see what is sent', async () => {
    await assert.rejects(lxd.instances.exec('c1', { command: ['true'] }));
    assert.ok(socket.connections() > 0);
  });
});

describe('exec input that passes the checks runs as given', () => {
  let lxd: LxdClient;
  const name = uniqueName('exec-input');
  before(async () => {
    lxd = await connect();
    await createInstance(lxd, name);
  });
  after(async () => {
    await removeInstance(lxd, name);
    lxd.close();
  });

  test('edge values: a large uid, a Uint8Array stdin, terminal 2x2 and 29999 wide, env with = in values', async () => {
    // (A uid outside the container's id map makes LXD's helper exit 1 with no output: not knowable here.)
    const r = await lxd.instances.exec(name, { command: ['id', '-u'], user: 10_000_000, via: 'websockets' });
    assert.equal(r.stdout.toString().trim(), '10000000');
    const piped = await lxd.instances.exec(name, { command: ['cat'], stdin: new TextEncoder().encode('bytes') });
    assert.equal(piped.stdout.toString(), 'bytes');
    const env = await lxd.instances.exec(name, { command: ['sh', '-c', 'echo "$A"'], env: { A: 'b=c' } });
    assert.equal(env.stdout.toString(), 'b=c\n');
    // Busybox's stty reports sizes of 1 or from 30000 up as 80x24, so the edges tried are 2 and 29999.
    for (const [width, height] of [
      [2, 2],
      [29_999, 24],
    ] as const) {
      // LXD 5.0.2 can drop the PTY output of a command that exits right after writing: it waits a little.
      const tty = await lxd.instances.execInteractive(name, {
        command: ['sh', '-c', 'stty size; sleep 0.2'],
        width,
        height,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of tty.stdout) chunks.push(chunk as Buffer);
      assert.equal(await tty.exit, 0);
      assert.equal(Buffer.concat(chunks).toString().trim(), `${height} ${width}`);
    }
  });
});
