import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  AbortError,
  InvalidArgumentError,
  type LxdClient,
  LxdError,
  NotFoundError,
  type SftpSession,
} from '@vmplane/lxd';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sftp', () => {
  let lxd: LxdClient;
  let sftp: SftpSession;
  const name = uniqueName('sftp');

  before(async () => {
    lxd = await connect();
    await createInstance(lxd, name);
    sftp = await lxd.instances.files.sftp(name);
  });
  after(async () => {
    sftp?.close();
    await removeInstance(lxd, name);
    lxd.close();
  });

  test('a large file round-trips, pipelined, with progress, and matches the files endpoint', async () => {
    const content = randomBytes(5 * 1024 * 1024 + 777);
    const progress: number[] = [];
    const written = await sftp.writeFile('/root/big.bin', content, { onProgress: (n) => progress.push(n) });
    assert.equal(written, content.length);
    assert.equal(progress.at(-1), content.length);
    const back = await sftp.readFile('/root/big.bin');
    assert.equal(sha(back), sha(content));
    const viaHttp = await lxd.instances.files.pull(name, '/root/big.bin');
    assert.ok(viaHttp.type === 'file' && viaHttp.content.equals(content));
  });

  test('mode, owner and append; a stream as the source', async () => {
    await sftp.writeFile('/root/owned', 'first\n', { mode: 0o640, uid: 1234, gid: 4321 });
    const stat = await sftp.stat('/root/owned');
    assert.deepEqual([stat.type, stat.mode, stat.uid, stat.gid, stat.size], ['file', 0o100640, 1234, 4321, 6]);
    await sftp.writeFile('/root/owned', Readable.from([Buffer.from('second\n'), Buffer.from('third\n')]), {
      append: true,
    });
    assert.equal((await sftp.readFile('/root/owned')).toString(), 'first\nsecond\nthird\n');
    const ls = await lxd.instances.exec(name, { command: ['stat', '-c', '%a %u %g', '/root/owned'] });
    assert.equal(ls.stdout.toString().trim(), '640 1234 4321');
  });

  test('directories, renames, symlinks, removal', async () => {
    await sftp.mkdir('/root/tree', { mode: 0o750 });
    await sftp.writeFile('/root/tree/a', 'a');
    await sftp.writeFile('/root/tree/b', 'b');
    await sftp.symlink('a', '/root/tree/link');
    const entries = await sftp.readdir('/root/tree');
    assert.deepEqual(
      entries.map((e) => [e.name, e.stat.type]),
      [
        ['a', 'file'],
        ['b', 'file'],
        ['link', 'symlink'],
      ],
    );
    assert.equal(await sftp.readlink('/root/tree/link'), 'a');
    assert.equal((await sftp.stat('/root/tree/link')).type, 'file', 'stat follows the link');
    assert.equal((await sftp.lstat('/root/tree/link')).type, 'symlink');
    assert.equal(((await sftp.stat('/root/tree')).mode ?? 0) & 0o777, 0o750);
    await sftp.rename('/root/tree/b', '/root/tree/a'); // replaces, as POSIX rename does
    assert.equal((await sftp.readFile('/root/tree/a')).toString(), 'b');
    assert.equal(await sftp.realpath('/root/tree/../tree/a'), '/root/tree/a');
    for (const f of ['a', 'link']) await sftp.remove(`/root/tree/${f}`);
    await sftp.rmdir('/root/tree');
    await assert.rejects(sftp.stat('/root/tree'), NotFoundError);
  });

  test('errors are typed; a directory is not read as a file', async () => {
    await assert.rejects(
      sftp.readFile('/no/such/file'),
      (e: unknown) => e instanceof NotFoundError && e instanceof LxdError,
    );
    await assert.rejects(sftp.readFile('/root'), InvalidArgumentError);
    await assert.rejects(sftp.rmdir('/root/nope'), LxdError);
    await assert.rejects(lxd.instances.files.sftp(uniqueName('missing')), NotFoundError);
  });

  test('an abort mid-transfer ends that call; the session goes on', async () => {
    const content = randomBytes(16 * 1024 * 1024);
    await sftp.writeFile('/root/abort.bin', content);
    const controller = new AbortController();
    const reading = sftp.readFile('/root/abort.bin', {
      signal: controller.signal,
      onProgress: (n) => {
        if (n > 1024 * 1024) controller.abort();
      },
    });
    await assert.rejects(reading, AbortError);
    assert.equal(sha(await sftp.readFile('/root/abort.bin')), sha(content));
    await sftp.remove('/root/abort.bin');
  });

  test('pushFromFile and pullToFile keep content, mode and owner; failures leave nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmpt-sftp-'));
    try {
      const content = randomBytes(3 * 1024 * 1024 + 5);
      const source = join(dir, 'source.bin');
      await writeFile(source, content, { mode: 0o604 });
      await chmod(source, 0o604);
      const seen: number[] = [];
      const sent = await lxd.instances.files.pushFromFile(name, source, '/root/fromfile.bin', {
        uid: 77,
        onProgress: (n) => seen.push(n),
      });
      assert.equal(sent, content.length);
      assert.equal(seen.at(-1), content.length);
      const target = join(dir, 'target.bin');
      const got = await lxd.instances.files.pullToFile(name, '/root/fromfile.bin', target);
      assert.deepEqual([got.type, got.mode, got.uid, got.size], ['file', 0o604, 77, content.length]);
      assert.ok((await readFile(target)).equals(content));
      assert.equal((await stat(target)).mode & 0o777, 0o604);

      await sftp.symlink('/root/fromfile.bin', '/root/fromfile.link');
      await assert.rejects(
        lxd.instances.files.pullToFile(name, '/root/fromfile.link', join(dir, 'l')),
        InvalidArgumentError,
      );
      await assert.rejects(lxd.instances.files.pullToFile(name, '/root/none', join(dir, 'none')), NotFoundError);
      await assert.rejects(lxd.instances.files.pushFromFile(name, dir, '/root/dir'), InvalidArgumentError);
      assert.deepEqual((await readdir(dir)).sort(), ['source.bin', 'target.bin']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a closed session refuses further calls', async () => {
    const own = await lxd.instances.files.sftp(name);
    assert.equal((await own.stat('/root')).type, 'directory');
    own.close();
    assert.equal(own.closed, true);
    await assert.rejects(own.stat('/root'), AbortError);
  });
});
