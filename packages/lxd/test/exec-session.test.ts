import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { ConnectionError, LxdClient, OperationFailedError } from '@vmplane/lxd';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';

/**
 * A unix-socket proxy in front of LXD that can cut the websocket connections alone, as a load
 * balancer's idle timeout or a dropped tunnel does, while plain requests (the operation's wait)
 * go on.
 */
class WebsocketCutter {
  readonly path: string;
  private readonly server: Server;
  private readonly websockets = new Set<Socket>();
  private readonly all = new Set<Socket>();

  private constructor(
    private readonly dir: string,
    target: string,
  ) {
    this.path = join(dir, 'lxd.socket');
    this.server = createServer((client) => {
      const upstream = createConnection(target);
      this.all.add(client).add(upstream);
      client.once('data', (first: Buffer) => {
        if (/\r\nupgrade: *websocket\r\n/i.test(first.toString('latin1'))) this.websockets.add(client).add(upstream);
      });
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        for (const s of [client, upstream]) {
          s.destroy();
          this.all.delete(s);
          this.websockets.delete(s);
        }
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  static async start(target = '/var/lib/lxd/unix.socket'): Promise<WebsocketCutter> {
    const cutter = new WebsocketCutter(await mkdtemp(join(tmpdir(), 'vmpt-wscut-')), target);
    await new Promise<void>((resolve) => cutter.server.listen(cutter.path, resolve));
    return cutter;
  }

  cutWebsockets(): number {
    const n = this.websockets.size / 2;
    for (const s of this.websockets) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    for (const s of this.all) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

describe('exec sessions own their connection', () => {
  let lxd: LxdClient;
  const name = uniqueName('exec-session');

  before(async () => {
    lxd = await connect();
    await createInstance(lxd, name);
  });
  after(async () => {
    await removeInstance(lxd, name);
    lxd.close();
  });

  /** Polls `ps` in the instance (bounded) until a command line is, or is no longer, there. */
  async function running(commandLine: string, present = true): Promise<boolean> {
    const pattern = `[${commandLine[0]}]${commandLine.slice(1)}`;
    for (let i = 0; i < 200; i++) {
      const ps = await lxd.instances.exec(name, { command: ['sh', '-c', `ps -o args | grep -c "^${pattern}"`] });
      if ((ps.stdout.toString().trim() !== '0') === present) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }

  /** A sleep whose command line no other test uses. */
  const uniqueSleep = () => `sleep ${1000 + randomBytes(2).readUInt16BE(0)}`;

  for (const how of ['break', 'throw', 'return'] as const) {
    test(`leaving a for await over stdout (${how}) kills the command and closes the session`, async () => {
      const sleep = uniqueSleep();
      const proc = await lxd.instances.spawn(name, { command: ['sh', '-c', `echo ready; exec ${sleep}`] });
      proc.stdin.end();
      let seen = '';
      const leave = async () => {
        for await (const chunk of proc.stdout) {
          seen += String(chunk);
          if (how === 'break') break;
          if (how === 'throw') throw new Error('reader gave up');
          return;
        }
      };
      if (how === 'throw') await assert.rejects(leave(), /reader gave up/);
      else await leave();
      assert.match(seen, /ready/);
      assert.ok(await running(sleep, false), `${sleep} still runs after the reader left`);
      assert.equal(await proc.exit, 137);
      assert.equal(proc.closed, true);
    });
  }

  test('with a PTY, leaving a for await over the terminal output early kills the command', async () => {
    const sleep = uniqueSleep();
    const tty = await lxd.instances.execInteractive(name, { command: ['sh', '-c', `echo ready; exec ${sleep}`] });
    let seen = '';
    for await (const chunk of tty.stdout) {
      seen += String(chunk);
      if (seen.includes('ready')) break;
    }
    assert.ok(await running(sleep, false), `${sleep} still runs`);
    assert.equal(await tty.exit, 137);
  });

  test('leaving a for await over stderr early kills the command too', async () => {
    const sleep = uniqueSleep();
    const proc = await lxd.instances.spawn(name, { command: ['sh', '-c', `echo oops >&2; exec ${sleep}`] });
    for await (const _ of proc.stderr) break;
    assert.ok(await running(sleep, false), `${sleep} still runs`);
    assert.equal(await proc.exit, 137);
  });

  test('a stream read to its end does not kill a command that goes on without it', async () => {
    const proc = await lxd.instances.spawn(name, {
      command: ['sh', '-c', 'echo bye; exec >&- 2>&-; sleep 0.3; exit 3'],
    });
    proc.stdin.end();
    const out: string[] = [];
    for await (const chunk of proc.stdout) out.push(String(chunk));
    assert.equal(out.join(''), 'bye\n');
    assert.equal(await proc.exit, 3);
  });

  test('a write to stdin after close, or after the command ended, errors with a typed error', async () => {
    const proc = await lxd.instances.spawn(name, { command: ['cat'] });
    proc.close();
    const afterClose = await new Promise<Error | null | undefined>((resolve) => {
      proc.stdin.once('error', () => {});
      proc.stdin.write('dropped?', resolve);
    });
    assert.ok(afterClose instanceof ConnectionError, `got ${String(afterClose)}`);
    assert.equal(afterClose.sent, false);
    await assert.rejects(proc.signal(15), ConnectionError);

    const ended = await lxd.instances.spawn(name, { command: ['true'] });
    ended.stdin.end();
    assert.equal(await ended.exit, 0);
    const late = await lxd.instances.spawn(name, { command: ['sh', '-c', 'exit 0'] });
    assert.equal(await late.exit, 0);
    const [error] = await Promise.all([once(late.stdin, 'error'), late.stdin.write('x')]);
    assert.ok(error[0] instanceof ConnectionError);
  });

  test('a connection cut mid-command reaches the reader and exit as ConnectionError, not as exit 137', async () => {
    const cutter = await WebsocketCutter.start();
    const client = await LxdClient.connect({ socketPath: cutter.path });
    const sleep = uniqueSleep();
    try {
      const proc = await client.instances.spawn(name, { command: ['sh', '-c', `echo started; exec ${sleep}`] });
      const reading = (async () => {
        const got: string[] = [];
        for await (const chunk of proc.stdout) {
          got.push(String(chunk));
          if (got.length === 1) assert.ok(cutter.cutWebsockets() >= 3, 'no websocket to cut');
        }
        return got;
      })();
      await assert.rejects(reading, (e: unknown) => e instanceof ConnectionError && /lost/.test(e.message));
      await assert.rejects(proc.exit, ConnectionError);
      assert.ok(await running(sleep, false), 'LXD did not end the command whose connection dropped');
    } finally {
      client.close();
      await cutter.close();
    }
  });

  test('LXD failing to run the command is an OperationFailedError, not exit -1, in both modes', async () => {
    const secret = `token-${randomBytes(8).toString('hex')}`;
    const env = { BIG: `${secret}${'x'.repeat(200_000)}` };
    for (const via of ['websockets', 'record-output'] as const) {
      const error = await lxd.instances.exec(name, { command: ['true'], env, via }).then(
        (r) => assert.fail(`${via}: exit ${r.exitCode}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof OperationFailedError, `${via}: ${String(error)}`);
      assert.match(error.message, /argument list too long/);
      // The environment is where callers put tokens: the error does not carry it.
      for (const shown of [inspect(error, { depth: Number.POSITIVE_INFINITY }), JSON.stringify(error), error.stack]) {
        assert.equal(String(shown).includes(secret), false, `${via}: the environment leaked into the error`);
      }
    }
  });

  test('no websocket secret is reachable by printing a session, its streams, its result or its errors', async () => {
    const proc = await lxd.instances.spawn(name, { command: ['sh', '-c', 'echo hi; exec sleep 2'] });
    const secrets = Object.values(proc.operation.websocketSecrets());
    assert.equal(secrets.length, 4);
    assert.equal('fds' in (proc.operation.initial.metadata as object), false, 'the public answer leaves them out');
    const printed = () => [
      inspect(proc, { depth: Number.POSITIVE_INFINITY }),
      JSON.stringify(proc),
      inspect(proc.stdin, { depth: Number.POSITIVE_INFINITY }),
      inspect(proc.stdout, { depth: Number.POSITIVE_INFINITY }),
      inspect(proc.stderr, { depth: Number.POSITIVE_INFINITY }),
      String(proc),
    ];
    const seen = printed();
    proc.close();
    proc.stdin.once('error', () => {});
    const error = await new Promise<unknown>((resolve) => proc.stdin.write('x', resolve));
    seen.push(...printed(), inspect(error, { depth: Number.POSITIVE_INFINITY }), JSON.stringify(error));
    seen.push(JSON.stringify(await lxd.instances.exec(name, { command: ['echo', 'x'], via: 'websockets' })));
    for (const text of seen) for (const s of secrets) assert.equal(text.includes(s), false, 'a secret was printed');
    assert.match(JSON.stringify(proc), /"operation"/);
  });
});
