import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortError,
  ConnectionError,
  InvalidArgumentError,
  LxdClient,
  LxdError,
  NotFoundError,
  TimeoutError,
} from '@vmplane/lxd';
import { capturingLogger } from './support/capture.js';
import { connect, createInstance, PREFIX, removeInstance, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

/** Resolves once the stream has closed, or fails after `ms`. */
async function closedWithin(stream: ReadStream, ms: number): Promise<void> {
  if (stream.closed) return;
  await Promise.race([
    new Promise<void>((resolve) => stream.once('close', () => resolve())),
    sleep(ms).then(() => {
      throw new Error(`stream still open after ${ms} ms`);
    }),
  ]);
}

/** How many of this process's open file descriptors refer to `path`. */
async function openDescriptorsOf(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path) n++;
  }
  return n;
}

describe('files', () => {
  let lxd: LxdClient;
  const name = uniqueName('files');
  let local: string;

  before(async () => {
    lxd = await connect();
    local = await mkdtemp(join(tmpdir(), 'vmpt-files-'));
    await createInstance(lxd, name);
  });
  after(async () => {
    await removeInstance(lxd, name);
    await rm(local, { recursive: true, force: true });
    lxd.close();
  });

  test('binary content round-trips with mode, uid and gid', async () => {
    const content = randomBytes(300_000);
    await lxd.instances.files.push(name, '/root/blob.bin', content, { mode: 0o640, uid: 1234, gid: 4321 });
    const file = await lxd.instances.files.pull(name, '/root/blob.bin');
    assert.equal(file.type, 'file');
    assert.ok(file.type === 'file' && file.content.equals(content));
    assert.equal(file.mode, 0o640);
    assert.equal(file.uid, 1234);
    assert.equal(file.gid, 4321);
    const ls = await lxd.instances.exec(name, { command: ['stat', '-c', '%a %u %g %s', '/root/blob.bin'] });
    assert.equal(ls.stdout.toString().trim(), `640 1234 4321 ${content.length}`);
  });

  test('push from a stream, pull as a stream', async () => {
    const parts = [randomBytes(70_000), randomBytes(90_000)];
    await lxd.instances.files.push(name, '/root/streamed', Readable.from(parts));
    const pulled = await lxd.instances.files.pullStream(name, '/root/streamed');
    const chunks: Buffer[] = [];
    for await (const c of pulled.stream) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(Buffer.concat(parts)));
  });

  test('pull straight to a local file keeps content and mode; a directory is refused', async () => {
    const content = randomBytes(9 * 1024 * 1024 + 123);
    await lxd.instances.files.push(name, '/root/big.bin', content, { mode: 0o604 });
    const target = join(local, 'big.bin');
    const got = await lxd.instances.files.pullToFile(name, '/root/big.bin', target);
    assert.equal(got.size, content.length);
    assert.ok((await readFile(target)).equals(content));
    assert.equal((await stat(target)).mode & 0o777, 0o604);
    await assert.rejects(lxd.instances.files.pullToFile(name, '/root', join(local, 'nope')), InvalidArgumentError);
  });

  test('append and overwrite', async () => {
    await lxd.instances.files.push(name, '/root/log.txt', 'one\n');
    await lxd.instances.files.push(name, '/root/log.txt', 'two\n', { write: 'append' });
    let f = await lxd.instances.files.pull(name, '/root/log.txt');
    assert.equal(f.type === 'file' && f.content.toString(), 'one\ntwo\n');
    await lxd.instances.files.push(name, '/root/log.txt', 'three\n');
    f = await lxd.instances.files.pull(name, '/root/log.txt');
    assert.equal(f.type === 'file' && f.content.toString(), 'three\n');
  });

  test('directories list their entries; symlinks give their target', async () => {
    await lxd.instances.files.mkdir(name, '/srv/a/b', { parents: true, mode: 0o750 });
    await lxd.instances.files.push(name, '/srv/a/b/f1', 'x');
    await lxd.instances.files.symlink(name, '/srv/a/link', '/srv/a/b/f1');
    const dir = await lxd.instances.files.pull(name, '/srv/a');
    assert.equal(dir.type, 'directory');
    assert.deepEqual(dir.type === 'directory' && [...dir.entries].sort(), ['b', 'link']);
    const b = await lxd.instances.files.stat(name, '/srv/a/b');
    assert.equal(b.type, 'directory');
    assert.equal(b.mode, 0o750);
    const link = await lxd.instances.files.pull(name, '/srv/a/link');
    assert.equal(link.type, 'symlink');
    assert.equal(link.type === 'symlink' && link.target, '/srv/a/b/f1');
  });

  test('delete removes a file; a missing file is NotFoundError', async () => {
    await lxd.instances.files.push(name, '/root/gone', 'bye');
    await lxd.instances.files.delete(name, '/root/gone');
    await assert.rejects(lxd.instances.files.pull(name, '/root/gone'), NotFoundError);
  });

  test('recursive push and pull of a directory tree keep content, modes and links', async () => {
    const src = join(local, 'src');
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(src, 'top.txt'), 'top');
    const bin = randomBytes(5000);
    await writeFile(join(src, 'sub', 'data.bin'), bin, { mode: 0o600 });
    await writeFile(join(src, 'sub', 'deeper', 'run.sh'), '#!/bin/sh\necho ok\n', { mode: 0o755 });
    await symlink('sub/data.bin', join(src, 'link'));
    const pushed: string[] = [];
    await lxd.instances.files.pushTree(name, src, '/opt/tree', { onEntry: (p) => pushed.push(p) });
    assert.ok(pushed.includes('/opt/tree/sub/deeper/run.sh'));
    const run = await lxd.instances.exec(name, { command: ['/opt/tree/sub/deeper/run.sh'] });
    assert.equal(run.stdout.toString(), 'ok\n');

    const dst = join(local, 'dst');
    await lxd.instances.files.pullTree(name, '/opt/tree', dst);
    assert.equal(await readFile(join(dst, 'top.txt'), 'utf8'), 'top');
    assert.ok((await readFile(join(dst, 'sub', 'data.bin'))).equals(bin));
    assert.equal((await stat(join(dst, 'sub', 'data.bin'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dst, 'sub', 'deeper', 'run.sh'))).mode & 0o777, 0o755);
    assert.equal(await readlink(join(dst, 'link')), 'sub/data.bin');
  });

  test('paths with traversal or not absolute are refused before sending', async () => {
    for (const bad of ['relative/path', '/root/../etc/passwd', '/root/\0x']) {
      await assert.rejects(lxd.instances.files.pull(name, bad), InvalidArgumentError);
      await assert.rejects(lxd.instances.files.push(name, bad, 'x'), InvalidArgumentError);
    }
    await assert.rejects(lxd.instances.files.push(name, '/root/m', 'x', { mode: 0o17777 }), InvalidArgumentError);
  });

  test('a pushed stream is released when LXD answers before reading it all (missing instance, refused path)', async () => {
    const big = join(local, 'early.bin');
    await writeFile(big, randomBytes(16 * 1024 * 1024));
    await lxd.instances.files.mkdir(name, '/root/a-directory');
    const cases: [string, string, (e: unknown) => boolean][] = [
      [`${PREFIX}missing-0`, '/root/x', (e) => e instanceof NotFoundError],
      [name, '/root/a-directory', (e) => e instanceof LxdError],
      [name, '/no/such/dir/x', (e) => e instanceof LxdError],
    ];
    for (const [instance, target, expected] of cases) {
      const stream = createReadStream(big);
      await assert.rejects(lxd.instances.files.push(instance, target, stream), expected, `${instance}:${target}`);
      await closedWithin(stream, 2_000);
      assert.ok(stream.bytesRead < 16 * 1024 * 1024, 'LXD answered before the upload was done');
    }
    assert.equal(await openDescriptorsOf(big), 0);
    // pushTree opens its files itself: none stays open when one of its pushes is refused early.
    const tree = join(local, 'early-tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    const inTree = join(tree, 'sub', 'big.bin');
    await writeFile(inTree, randomBytes(16 * 1024 * 1024));
    await lxd.instances.files.mkdir(name, '/root/early-tree/sub/big.bin', { parents: true });
    await assert.rejects(lxd.instances.files.pushTree(name, tree, '/root/early-tree'), LxdError);
    await sleep(200);
    assert.equal(await openDescriptorsOf(inTree), 0, 'no descriptor of the tree file is left open');
  });

  test("a download stream's deadline is the caller's: the client's default timeout ends when the answer begins", async () => {
    const content = randomBytes(4 * 1024 * 1024);
    await lxd.instances.files.push(name, '/root/slow.bin', content);
    const short = await LxdClient.connect({ timeout: 300 });
    try {
      const pulled = await short.instances.files.pullStream(name, '/root/slow.bin');
      const chunks: Buffer[] = [];
      let slept = 0;
      for await (const c of pulled.stream) {
        chunks.push(c as Buffer);
        const t0 = performance.now();
        // About 1 ms per 4 KiB: the 4 MiB take a second, whatever size the chunks come in.
        await sleep(Math.max(5, (c as Buffer).length / 4096));
        slept += performance.now() - t0;
      }
      assert.ok(slept > 3 * 300, `the read lasted longer than the default timeout (${Math.round(slept)} ms asleep)`);
      assert.ok(Buffer.concat(chunks).equals(content), 'the whole content arrived');

      // The caller's own limits still hold while reading.
      const controller = new AbortController();
      const aborted = await short.instances.files.pullStream(name, '/root/slow.bin', { signal: controller.signal });
      await assert.rejects(
        (async () => {
          for await (const _ of aborted.stream) {
            controller.abort();
            await sleep(15);
          }
        })(),
        AbortError,
      );
      const timed = await short.instances.files.pullStream(name, '/root/slow.bin', { timeout: 200 });
      await assert.rejects(
        (async () => {
          for await (const c of timed.stream) await sleep(Math.max(5, (c as Buffer).length / 4096));
        })(),
        TimeoutError,
      );
    } finally {
      short.close();
    }
  });

  test('a download cut mid-stream fails with a ConnectionError, not a bare Error', async () => {
    const content = randomBytes(8 * 1024 * 1024);
    await lxd.instances.files.push(name, '/root/cut.bin', content);
    const proxy = await SocketProxy.start();
    const viaProxy = await LxdClient.connect({ socketPath: proxy.path });
    try {
      const pulled = await viaProxy.instances.files.pullStream(name, '/root/cut.bin');
      await assert.rejects(
        (async () => {
          for await (const _ of pulled.stream) {
            proxy.cutAll();
            await sleep(10);
          }
        })(),
        (e: unknown) => e instanceof ConnectionError && e.sent,
      );
    } finally {
      viaProxy.close();
      await proxy.close();
    }
  });

  test('large files (over SFTP) mean what small ones (the files endpoint) mean: mode, owner, append, errors', async () => {
    const small = randomBytes(1000);
    const large = randomBytes(9 * 1024 * 1024);
    const outcome = async (content: Buffer, dir: string) => {
      await lxd.instances.files.mkdir(name, dir, { parents: true });
      // A new file takes mode and owner; an existing one keeps its own, as LXD's endpoint does.
      await lxd.instances.files.push(name, `${dir}/f`, content, { mode: 0o640, uid: 1234, gid: 4321 });
      const created = await lxd.instances.files.stat(name, `${dir}/f`);
      await lxd.instances.files.push(name, `${dir}/f`, content, { mode: 0o600, uid: 1, gid: 1 });
      const replaced = await lxd.instances.files.pull(name, `${dir}/f`);
      await lxd.instances.files.push(name, `${dir}/f`, content, { write: 'append' });
      const appended = await lxd.instances.files.pull(name, `${dir}/f`);
      const appendMissing = await lxd.instances.files.push(name, `${dir}/missing`, content, { write: 'append' }).then(
        () => 'created',
        (e: unknown) => (e as Error).constructor.name,
      );
      const intoDirectory = await lxd.instances.files.push(name, dir, content).then(
        () => 'written',
        (e: unknown) => (e instanceof LxdError ? 'LxdError' : String(e)),
      );
      const missingDir = await lxd.instances.files.push(name, `${dir}/no/such/x`, content).then(
        () => 'written',
        (e: unknown) => (e as Error).constructor.name,
      );
      return {
        created: { type: created.type, mode: created.mode, uid: created.uid, gid: created.gid },
        replaced: {
          mode: replaced.mode,
          uid: replaced.uid,
          gid: replaced.gid,
          same: replaced.type === 'file' && replaced.content.equals(content),
        },
        appended: appended.type === 'file' && appended.content.equals(Buffer.concat([content, content])),
        appendMissing,
        intoDirectory,
        missingDir,
      };
    };
    const viaEndpoint = await outcome(small, '/srv/small');
    const viaSftp = await outcome(large, '/srv/large');
    assert.deepEqual(viaSftp, viaEndpoint);
    assert.deepEqual(viaEndpoint.created, { type: 'file', mode: 0o640, uid: 1234, gid: 4321 });
    assert.equal(viaEndpoint.replaced.mode, 0o640, 'an existing file keeps its mode');
    assert.ok(viaEndpoint.replaced.same && viaEndpoint.appended);
    // Progress of a large push counts every byte.
    let sent = 0;
    await lxd.instances.files.push(name, '/srv/large/progress', large, { onUploadProgress: (n) => (sent = n) });
    assert.equal(sent, large.length);
    // Which way each went: only the large transfers opened SFTP sessions.
    const logger = capturingLogger();
    const watched = await LxdClient.connect({ logger });
    try {
      const upgrades = () => logger.lines.filter((l) => l.message === 'lxd upgrade').length;
      await watched.instances.files.push(name, '/srv/small/w', small);
      await watched.instances.files.pull(name, '/srv/small/w');
      assert.equal(upgrades(), 0, 'small files use the files endpoint');
      await watched.instances.files.push(name, '/srv/large/w', large);
      assert.equal(upgrades(), 1, 'a large push goes over SFTP');
      await watched.instances.files.pull(name, '/srv/large/w');
      assert.equal(upgrades(), 2, 'a large pull goes over SFTP');
    } finally {
      watched.close();
    }
    // A missing instance is the same typed error either way.
    await assert.rejects(lxd.instances.files.push(`${PREFIX}missing-0`, '/root/x', large), NotFoundError);
    await assert.rejects(lxd.instances.files.pull(`${PREFIX}missing-0`, '/root/x'), NotFoundError);
  });
});
