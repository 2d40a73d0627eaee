import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { InvalidArgumentError, LxdClient } from '@vmplane/lxd';
import { createInstance, removeInstance, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

/**
 * A body of the wrong type once threw inside the exchange after the request was created; the
 * request was never ended and LXD 5.0.2 then stopped answering every client. Every entry point
 * that sends content is tried with each wrong type, through a proxy that counts what reaches
 * the daemon, which must still answer afterwards.
 */
describe('request bodies', () => {
  let proxy: SocketProxy;
  let lxd: LxdClient;
  const name = uniqueName('bodies');

  before(async () => {
    proxy = await SocketProxy.start();
    lxd = await LxdClient.connect({ socketPath: proxy.path, timeout: 10_000 });
    await createInstance(lxd, name);
  });
  after(async () => {
    await removeInstance(lxd, name);
    lxd.close();
    await proxy.close();
  });

  const wrong: [string, unknown][] = [
    ['null', null],
    ['a number', 42],
    ['a boolean', true],
    ['a plain object', { hi: 1 }],
    ['an array', [1, 2]],
    ['a function', () => 'hi'],
    ['a symbol', Symbol('hi')],
    ['a bigint', 1n],
    ['a Date', new Date()],
  ];

  test('every entry point refuses each wrong type before a request exists, and the daemon still answers', async () => {
    const entries: [string, (body: unknown) => Promise<unknown>][] = [
      ['files.push', (b) => lxd.instances.files.push(name, '/root/body', b as Buffer)],
      ['files.push (append)', (b) => lxd.instances.files.push(name, '/root/body', b as Buffer, { write: 'append' })],
      ['files.symlink', (b) => lxd.instances.files.symlink(name, '/root/link', b as string)],
      ['instances.importBackup', (b) => lxd.instances.importBackup(b as Buffer)],
      ['images.upload tarball', (b) => lxd.images.upload({ tarball: b as Buffer })],
      ['images.upload metadata', (b) => lxd.images.upload({ metadata: b as Buffer, rootfs: Buffer.from('x') })],
      ['images.upload rootfs', (b) => lxd.images.upload({ metadata: Buffer.from('x'), rootfs: b as Buffer })],
      [
        'transport.request rawBody',
        (b) => lxd.transport.request({ method: 'POST', path: '/1.0/instances', rawBody: b as Buffer }),
      ],
    ];
    for (const [what, send] of entries) {
      for (const [kind, body] of wrong) {
        const before = proxy.bytesFromClients;
        let pending: Promise<unknown> | undefined;
        assert.doesNotThrow(() => {
          pending = send(body);
        }, `${what} with ${kind} throws synchronously`);
        await assert.rejects(pending as Promise<unknown>, InvalidArgumentError, `${what} with ${kind}`);
        assert.equal(proxy.bytesFromClients, before, `${what} with ${kind}: nothing reached the daemon`);
        // The daemon answers everyone as before.
        const server = await lxd.server.get({ timeout: 5_000 });
        assert.equal(server.auth, 'trusted');
      }
    }
    // importBackup takes bytes or a stream, not text.
    await assert.rejects(lxd.instances.importBackup('a string' as unknown as Buffer), InvalidArgumentError);
  });

  test('bytes are bytes whatever their container: Buffer, Uint8Array, a view into a larger buffer, ArrayBuffer', async () => {
    const content = randomBytes(70_000);
    const backing = new ArrayBuffer(content.length + 64);
    const view = new Uint8Array(backing, 32, content.length);
    view.set(content);
    const exact = content.buffer.slice(content.byteOffset, content.byteOffset + content.length);
    const forms: [string, Buffer | Uint8Array | ArrayBuffer][] = [
      ['Buffer', content],
      ['Uint8Array', new Uint8Array(content)],
      ['Uint8Array view at an offset', view],
      ['ArrayBuffer', exact],
      ['TextEncoder output', new TextEncoder().encode('hi')],
    ];
    for (const [kind, body] of forms) {
      await lxd.instances.files.push(name, '/root/bytes', body);
      const got = await lxd.instances.files.pull(name, '/root/bytes');
      const expected = kind === 'TextEncoder output' ? Buffer.from('hi') : content;
      assert.ok(got.type === 'file' && got.content.equals(expected), kind);
    }
  });
});
