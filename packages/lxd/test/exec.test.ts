import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AbortError, InvalidArgumentError, type LxdClient, TimeoutError } from '@vmplane/lxd';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';

describe('exec', () => {
  let lxd: LxdClient;
  const name = uniqueName('exec');

  before(async () => {
    lxd = await connect();
    await createInstance(lxd, name);
  });
  /** Polls `ps` in the instance until a command line is (or is no longer) there. */
  async function running(commandLine: string, present = true): Promise<boolean> {
    const pattern = `[${commandLine[0]}]${commandLine.slice(1)}`;
    for (let i = 0; i < 200; i++) {
      const ps = await lxd.instances.exec(name, { command: ['sh', '-c', `ps -o args | grep -c "^${pattern}"`] });
      if ((ps.stdout.toString().trim() !== '0') === present) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }
  after(async () => {
    await removeInstance(lxd, name);
    lxd.close();
  });

  test('exit codes: 0, 7, 127 for a missing command', async () => {
    assert.equal((await lxd.instances.exec(name, { command: ['true'] })).exitCode, 0);
    const seven = await lxd.instances.exec(name, { command: ['sh', '-c', 'echo out; echo err >&2; exit 7'] });
    assert.equal(seven.exitCode, 7);
    assert.equal(seven.stdout.toString(), 'out\n');
    assert.equal(seven.stderr.toString(), 'err\n');
    assert.equal((await lxd.instances.exec(name, { command: ['/no/such/command'] })).exitCode, 127);
  });

  test('output of commands that end at once is never lost, even many at a time', async () => {
    // LXD before 5.14 can drop the websocket output of such commands (canonical/lxd#11422); `lxc
    // exec` loses some here. The buffered exec records output instead unless it must feed stdin.
    for (let round = 0; round < 5; round++) {
      const runs = Array.from({ length: 12 }, (_, i) =>
        lxd.instances.exec(name, { command: ['sh', '-c', `echo out-${round}-${i}; echo err-${round}-${i} >&2`] }),
      );
      const results = await Promise.all(runs);
      results.forEach((r, i) => {
        assert.equal(r.exitCode, 0);
        assert.equal(r.stdout.toString(), `out-${round}-${i}\n`);
        assert.equal(r.stderr.toString(), `err-${round}-${i}\n`);
      });
    }
  });

  test('exit code 143 after SIGTERM over the control socket', async () => {
    const proc = await lxd.instances.spawn(name, { command: ['sleep', '300'] });
    proc.stdin.end();
    assert.ok(await running('sleep 300'), 'sleep never started');
    await proc.signal(15);
    assert.equal(await proc.exit, 143);
  });

  test('stdin is piped from a Buffer and from a stream, and EOF ends the command', async () => {
    const fromBuffer = await lxd.instances.exec(name, { command: ['cat'], stdin: 'hello\nworld\n' });
    assert.equal(fromBuffer.stdout.toString(), 'hello\nworld\n');
    const data = randomBytes(200_000);
    const fromStream = await lxd.instances.exec(name, {
      command: ['sha256sum'],
      stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
    });
    assert.equal(fromStream.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));
    const noStdin = await lxd.instances.exec(name, { command: ['cat'] });
    assert.equal(noStdin.exitCode, 0);
    assert.equal(noStdin.stdout.length, 0);
  });

  test('1 MiB of stdout arrives whole', async () => {
    const r = await lxd.instances.exec(name, {
      command: [
        'sh',
        '-c',
        'head -c 1048576 /dev/urandom | tee /tmp/big | wc -c >&2; sha256sum /tmp/big >&2; cat /tmp/big',
      ],
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, 1048576);
    const [count, sum] = r.stderr.toString().trim().split('\n');
    assert.equal(Number(count), 1048576);
    assert.equal(sum?.split(' ')[0], createHash('sha256').update(r.stdout).digest('hex'));
  });

  test('environment, working directory, user and group', async () => {
    const r = await lxd.instances.exec(name, {
      command: ['sh', '-c', 'echo "$GREETING"; pwd; id -u; id -g'],
      env: { GREETING: 'hi there' },
      cwd: '/tmp',
      user: 65534,
      group: 65534,
    });
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['hi there', '/tmp', '65534', '65534']);
  });

  test('interactive: a PTY that resizes and takes signals', async () => {
    const proc = await lxd.instances.execInteractive(name, { command: ['sh'], width: 80, height: 24 });
    const chunks: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => chunks.push(c));
    const seen = async (text: string) => {
      for (let i = 0; i < 200 && !Buffer.concat(chunks).toString().includes(text); i++)
        await new Promise((r) => setTimeout(r, 25));
      return Buffer.concat(chunks).toString().includes(text);
    };
    proc.stdin.write('stty size; tty\n');
    assert.ok(await seen('24 80'), `PTY size not reported: ${Buffer.concat(chunks).toString()}`);
    assert.ok(await seen('/dev/pts/'), 'stdin is not a terminal');
    await proc.resize(132, 43);
    proc.stdin.write('stty size\n');
    assert.ok(await seen('43 132'), `resize not applied: ${Buffer.concat(chunks).toString()}`);
    proc.stdin.write('exec sleep 300\n');
    // sh replaced by sleep: wait until it runs, then terminate it over the control socket.
    assert.ok(await running('sleep 300'), 'sleep never started');
    await proc.signal(15);
    assert.equal(await proc.exit, 143);
    proc.close();
  });

  test('record-output mode returns the output LXD recorded', async () => {
    const r = await lxd.instances.execRecorded(name, { command: ['sh', '-c', 'echo recorded; echo oops >&2; exit 3'] });
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout.toString(), 'recorded\n');
    assert.equal(r.stderr.toString(), 'oops\n');
  });

  test('the recorded output files are removed, also after a failed command', async () => {
    const leftovers = async () => (await lxd.instances.logs.list(name)).filter((f) => /^exec_/.test(f));
    assert.deepEqual(await leftovers(), []);
    assert.equal((await lxd.instances.exec(name, { command: ['sh', '-c', 'echo x; echo y >&2'] })).exitCode, 0);
    assert.equal((await lxd.instances.exec(name, { command: ['/no/such/command'] })).exitCode, 127);
    assert.equal((await lxd.instances.execRecorded(name, { command: ['false'] })).exitCode, 1);
    assert.deepEqual(await leftovers(), []);
  });

  test('via websockets, output streams the same and stdin still works', async () => {
    const r = await lxd.instances.exec(name, {
      command: ['sh', '-c', 'echo a; echo b >&2; exit 4'],
      via: 'websockets',
    });
    assert.deepEqual([r.exitCode, r.stdout.toString(), r.stderr.toString()], [4, 'a\n', 'b\n']);
    await assert.rejects(
      lxd.instances.exec(name, { command: ['cat'], stdin: 'x', via: 'record-output' }),
      InvalidArgumentError,
    );
  });

  test('abort of a recorded exec ends the call; its log files go when the command ends', async () => {
    const controller = new AbortController();
    const pending = lxd.instances.exec(name, { command: ['sh', '-c', 'exec sleep 2'], signal: controller.signal });
    assert.ok(await running('sleep 2'), 'sleep never started');
    controller.abort();
    await assert.rejects(pending, AbortError);
    assert.ok(await running('sleep 2', false), 'the command did not end');
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = (await lxd.instances.logs.list(name)).filter((f) => /^exec_/.test(f));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(left, []);
  });

  test('abort mid-exec over websockets ends the call with AbortError and kills the command', async () => {
    const controller = new AbortController();
    const pending = lxd.instances.exec(name, {
      command: ['sh', '-c', 'echo started; exec sleep 301'],
      signal: controller.signal,
      via: 'websockets',
    });
    assert.ok(await running('sleep 301'), 'sleep never started');
    controller.abort();
    await assert.rejects(pending, (e: unknown) => e instanceof AbortError && e.sent);
    const left = await running('sleep 301', false);
    assert.ok(left, 'the aborted command is still running');
  });

  test('a timeout mid-exec ends the call with TimeoutError', async () => {
    await assert.rejects(lxd.instances.exec(name, { command: ['sleep', '302'], timeout: 300 }), TimeoutError);
  });

  test('bad input is refused before anything is sent', async () => {
    await assert.rejects(lxd.instances.exec(name, { command: [] }), InvalidArgumentError);
    await assert.rejects(lxd.instances.exec('bad/name', { command: ['true'] }), InvalidArgumentError);
  });
});
