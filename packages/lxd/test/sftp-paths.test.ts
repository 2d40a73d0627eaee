import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { InvalidArgumentError, type LxdClient, SftpSession } from '@vmplane/lxd';
import { Packet, PacketReader, PacketSplitter, PacketWriter, Status } from '../src/sftp/wire.js';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';

/**
 * An SFTP server in memory: it answers INIT with VERSION 3 and every later request with STATUS OK
 * (or ATTRS for stat calls), and records the type of each request, so a test sees what was sent.
 */
function fakeServer(): { socket: Duplex & { privateKey: string }; requests: number[] } {
  const requests: number[] = [];
  const splitter = new PacketSplitter();
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      for (const packet of splitter.push(chunk)) {
        const body = new PacketReader(packet);
        const type = body.byte();
        if (type === Packet.INIT) {
          socket.push(new PacketWriter(Packet.VERSION, 16).uint32(3).finish());
          continue;
        }
        requests.push(type);
        const id = body.uint32();
        const answer = [Packet.STAT, Packet.LSTAT].includes(type as 7 | 17)
          ? new PacketWriter(Packet.ATTRS, 64).uint32(id).attrs({ size: 1, mode: 0o100644 })
          : [Packet.REALPATH, Packet.READLINK].includes(type as 16 | 19)
            ? new PacketWriter(Packet.NAME, 64).uint32(id).uint32(1).string('/x').string('/x').attrs({})
            : new PacketWriter(Packet.STATUS, 64).uint32(id).uint32(Status.OK).string('').string('');
        socket.push(answer.finish());
      }
      callback();
    },
  }) as Duplex & { privateKey: string };
  // What a TLS socket holds in its options: printing the session must not reach it.
  socket.privateKey = '-----BEGIN PRIVATE KEY-----fake-----END PRIVATE KEY-----';
  return { socket, requests };
}

const badPaths = ['', 'relative/file', './x', '/root/../etc/shadow', '/..', '/a/..', '/a\0b', '/\ud800', 7, null];

describe('sftp: paths follow the files API rules, checked before anything is sent', () => {
  let session: SftpSession;
  let requests: number[];
  before(async () => {
    const server = fakeServer();
    requests = server.requests;
    session = await SftpSession.start(server.socket, 'sftp fake');
  });
  after(() => session.close());

  const calls: Array<[string, (p: never) => Promise<unknown>]> = [
    ['stat', (p) => session.stat(p)],
    ['lstat', (p) => session.lstat(p)],
    ['setstat', (p) => session.setstat(p, { mode: 0o600 })],
    ['readdir', (p) => session.readdir(p)],
    ['mkdir', (p) => session.mkdir(p)],
    ['rmdir', (p) => session.rmdir(p)],
    ['remove', (p) => session.remove(p)],
    ['rename from', (p) => session.rename(p, '/ok')],
    ['rename to', (p) => session.rename('/ok', p)],
    ['symlink path', (p) => session.symlink('target', p)],
    ['readlink', (p) => session.readlink(p)],
    ['readFile', (p) => session.readFile(p)],
    ['read', (p) => session.read(p, {}, () => {})],
    ['writeFile', (p) => session.writeFile(p, 'x')],
  ];

  for (const [name, call] of calls) {
    test(`${name}: relative, '..', NUL, lone surrogates and non-strings are refused`, async () => {
      for (const bad of badPaths) {
        await assert.rejects(call(bad as never), InvalidArgumentError, `${name} took ${JSON.stringify(bad)}`);
      }
      assert.deepEqual(requests, [], 'a request was sent');
    });
  }

  test('realpath may resolve "..", but takes no relative path or NUL; link targets may be relative', async () => {
    for (const bad of ['relative', '../x', '/a\0', '']) {
      await assert.rejects(session.realpath(bad), InvalidArgumentError);
    }
    for (const bad of ['', 'a\0b', 5]) await assert.rejects(session.symlink(bad as never, '/l'), InvalidArgumentError);
    await assert.rejects(session.writeFile('/f', 5 as never), InvalidArgumentError);
    assert.deepEqual(requests, []);
    assert.equal(await session.realpath('/a/../b'), '/x');
    await session.symlink('../lib/x', '/l');
    await session.stat('/a/./b');
    assert.deepEqual(requests, [Packet.REALPATH, Packet.SYMLINK, Packet.STAT], 'good paths are sent');
  });

  test('printing a session shows neither its connection nor what that holds', () => {
    for (const text of [inspect(session, { depth: Number.POSITIVE_INFINITY }), JSON.stringify(session)]) {
      assert.equal(text.includes('PRIVATE KEY'), false, text);
      assert.match(text, /sftp fake/);
    }
  });
});

describe('sftp: traversal against the daemon', () => {
  let lxd: LxdClient;
  let sftp: SftpSession;
  const name = uniqueName('sftp-paths');
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

  test("'..' is refused, the session stays usable, and the same path written plainly works", async () => {
    await sftp.writeFile('/root/inside', 'in');
    await assert.rejects(sftp.readFile('/tmp/../root/inside'), InvalidArgumentError);
    await assert.rejects(sftp.remove('root/inside'), InvalidArgumentError);
    assert.equal((await sftp.readFile('/root/inside')).toString(), 'in');
    assert.equal(await sftp.realpath('/tmp/../root/inside'), '/root/inside');
    await sftp.remove('/root/inside');
  });
});
