import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortError,
  etagOf,
  InvalidArgumentError,
  type LxdClient,
  LxdError,
  NotFoundError,
  OperationFailedError,
  PreconditionFailedError,
  TimeoutError,
} from '@vmplane/lxd';
import { marker, splitMetadata, unifiedImage } from './support/images-tar.js';
import { connect, IMAGE_ALIAS, IMAGE_DIR, PREFIX, uniqueName, withInstance } from './support/lxd.js';

const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** A stream that yields `data` in small pieces with pauses, so a test can cut it mid-upload. */
function slowStream(data: Buffer, pauseMs = 50, piece = 16 * 1024): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < data.length; i += piece) {
        await sleep(pauseMs);
        yield data.subarray(i, i + piece);
      }
    })(),
    { objectMode: false },
  );
}

describe('images', () => {
  let lxd: LxdClient;
  const fingerprints = new Set<string>();
  const aliases = new Set<string>();

  before(async () => {
    lxd = await connect();
  });
  after(async () => {
    for (const a of aliases) {
      if (!a.startsWith(PREFIX)) continue;
      await lxd.images.aliases.delete(a).catch(() => {});
    }
    for (const fp of fingerprints) await lxd.images.delete(fp).catch(() => {});
    lxd.close();
  });

  /** Deletes an image a test made, now (and again in after() if this fails). */
  async function remove(fp: string) {
    await lxd.images.delete(fp);
    fingerprints.delete(fp);
  }

  test('list, fingerprints and get (with ETag) see the test image', async () => {
    const image = await lxd.images.getByAlias(IMAGE_ALIAS);
    assert.match(image.fingerprint, /^[0-9a-f]{64}$/);
    assert.ok(etagOf(image), 'get keeps the ETag');
    assert.ok((await lxd.images.fingerprints()).includes(image.fingerprint));
    assert.ok((await lxd.images.names()).includes(image.fingerprint));
    const listed = await lxd.images.list();
    assert.ok(listed.some((i) => i.fingerprint === image.fingerprint && i.aliases.some((a) => a.name === IMAGE_ALIAS)));
    const filtered = await lxd.images.list({ filter: `fingerprint eq ${image.fingerprint}` });
    assert.deepEqual(
      filtered.map((i) => i.fingerprint),
      [image.fingerprint],
    );
    const prefix = await lxd.images.get(image.fingerprint.slice(0, 12));
    assert.equal(prefix.fingerprint, image.fingerprint);
    assert.ok(!(await lxd.images.list({ public: true })).some((i) => !i.public));
  });

  test('bad input is refused before anything is sent', async () => {
    await assert.rejects(lxd.images.get('not-hex!'), InvalidArgumentError);
    await assert.rejects(lxd.images.get(''), InvalidArgumentError);
    await assert.rejects(lxd.images.upload({ tarball: 42 as unknown as Buffer }), InvalidArgumentError);
    await assert.rejects(lxd.images.upload({ tarball: { path: '/no/such/file' } }), InvalidArgumentError);
    await assert.rejects(lxd.images.aliases.create({ name: 'x\ny', target: 'abc' }), InvalidArgumentError);
    await assert.rejects(
      lxd.images.copyFrom({ server: 'ftp://example', protocol: 'simplestreams', alias: 'a' }),
      InvalidArgumentError,
    );
    await assert.rejects(lxd.images.copyFrom({ server: 'http://127.0.0.1:1', alias: 'a' }), InvalidArgumentError);
    await assert.rejects(lxd.images.copyFrom({ server: 'https://127.0.0.1:1', protocol: 'lxd' }), InvalidArgumentError);
    await assert.rejects(lxd.images.get('0'.repeat(64)), NotFoundError);
  });

  test('unified upload: progress, fingerprint check, export round trip', async () => {
    const tarball = unifiedImage();
    const expected = sha256(tarball);
    const seen: number[] = [];
    const alias = uniqueName('img-unified');
    aliases.add(alias);
    const result = await lxd.images.upload(
      { tarball, filename: 'vmpt.tar.gz', properties: { 'user.vmpt': 'yes' }, aliases: [alias] },
      { onProgress: (p) => seen.push(p.bytes) },
    );
    fingerprints.add(result.fingerprint);
    assert.equal(result.fingerprint, expected);
    assert.equal(result.size, tarball.length);
    assert.deepEqual(result.aliases, [alias]);
    assert.equal(seen.at(-1), tarball.length, 'progress reaches the full size');
    const image = await lxd.images.get(expected);
    assert.equal(image.properties['user.vmpt'], 'yes');
    assert.equal(image.filename, 'vmpt.tar.gz');
    assert.equal((await lxd.images.aliases.get(alias)).target, expected);

    const received: number[] = [];
    const exported = await lxd.images.exportToBuffer(expected, { onProgress: (p) => received.push(p.bytes) });
    assert.equal(exported.format, 'unified');
    assert.ok(exported.metadata.equals(tarball), 'export returns the uploaded bytes');
    assert.equal(received.at(-1), tarball.length);

    const streamed = await lxd.images.export(expected);
    assert.equal(streamed.format, 'unified');
    if (streamed.format === 'unified') {
      const chunks: Buffer[] = [];
      for await (const c of streamed.data) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(tarball));
    }
    // Uploading the same bytes again is refused: LXD already has that fingerprint.
    await assert.rejects(lxd.images.upload({ tarball }), (e: unknown) => e instanceof LxdError);
    await lxd.images.aliases.delete(alias);
    aliases.delete(alias);
    await remove(expected);
    assert.equal(await lxd.images.exists(expected), false);
  });

  test('unified upload from a stream: fingerprint computed as it goes', async () => {
    const tarball = unifiedImage();
    const result = await lxd.images.upload({
      tarball: Readable.from([tarball.subarray(0, 100), tarball.subarray(100)]),
    });
    fingerprints.add(result.fingerprint);
    assert.equal(result.fingerprint, sha256(tarball));
    await remove(result.fingerprint);
  });

  test('uploads take any bytes: an ArrayBuffer, a Uint8Array view into a larger buffer', async () => {
    const tarball = unifiedImage();
    const exact = new Uint8Array(tarball).buffer;
    const first = await lxd.images.upload({ tarball: exact });
    fingerprints.add(first.fingerprint);
    assert.equal(first.fingerprint, sha256(tarball));
    await remove(first.fingerprint);
    const metadata = splitMetadata();
    const rootfs = readFileSync(join(IMAGE_DIR, 'split-rootfs.squashfs'));
    const backing = new Uint8Array(metadata.length + 100);
    backing.set(metadata, 50);
    const view = new Uint8Array(backing.buffer, 50, metadata.length);
    const split = await lxd.images.upload({ metadata: view, rootfs: new Uint8Array(rootfs) });
    fingerprints.add(split.fingerprint);
    assert.equal(split.fingerprint, sha256(metadata, rootfs));
    await remove(split.fingerprint);
  });

  test('split upload (multipart metadata + squashfs rootfs from a file), export round trip', async () => {
    const metadata = splitMetadata();
    const rootfsPath = join(IMAGE_DIR, 'split-rootfs.squashfs');
    const rootfs = readFileSync(rootfsPath);
    const expected = sha256(metadata, rootfs);
    const seen: { bytes: number; total: number | undefined }[] = [];
    const result = await lxd.images.upload(
      { metadata, rootfs: { path: rootfsPath }, properties: { description: `${PREFIX}split` } },
      { onProgress: (p) => seen.push({ bytes: p.bytes, total: p.total }) },
    );
    fingerprints.add(result.fingerprint);
    assert.equal(result.fingerprint, expected);
    const last = seen.at(-1);
    assert.ok(last && last.total !== undefined && last.bytes === last.total, 'progress reaches the known total');
    assert.ok(last.total > metadata.length + rootfs.length, 'the total counts the multipart framing');
    const image = await lxd.images.get(expected);
    assert.equal(image.type, 'container');
    assert.equal(image.properties.description, `${PREFIX}split`);

    const exported = await lxd.images.exportToBuffer(expected);
    assert.equal(exported.format, 'split');
    assert.ok(exported.metadata.equals(metadata), 'metadata part round-trips');
    assert.ok(exported.rootfs?.equals(rootfs), 'rootfs part round-trips');
    await remove(expected);
  });

  test('a wrong expected fingerprint is refused by LXD, typed', async () => {
    const tarball = unifiedImage();
    await assert.rejects(
      lxd.images.upload({ tarball, fingerprint: 'a'.repeat(64) }),
      (e: unknown) => e instanceof OperationFailedError && /fingerprint/i.test((e as Error).message),
    );
    assert.equal(await lxd.images.exists(sha256(tarball)), false);
  });

  test('update with ETag (stale ETag gives 412), patch', async () => {
    const result = await lxd.images.upload({ tarball: unifiedImage() });
    fingerprints.add(result.fingerprint);
    const image = await lxd.images.get(result.fingerprint);
    const etag = etagOf(image);
    assert.ok(etag);
    await lxd.images.update(
      result.fingerprint,
      {
        properties: { ...image.properties, 'user.step': '1' },
        public: false,
        auto_update: false,
        profiles: ['default'],
      },
      { etag },
    );
    await assert.rejects(
      lxd.images.update(result.fingerprint, { properties: { 'user.step': 'stale' } }, { etag }),
      (e: unknown) => e instanceof PreconditionFailedError && e instanceof LxdError && e.status === 412,
    );
    await lxd.images.patch(result.fingerprint, { properties: { 'user.step': '2' } });
    const after = await lxd.images.get(result.fingerprint);
    assert.equal(after.properties['user.step'], '2');
    await remove(result.fingerprint);
  });

  test('aliases: create, list, get, update with ETag, rename, move, delete', async () => {
    const base = await lxd.images.getByAlias(IMAGE_ALIAS);
    const result = await lxd.images.upload({ tarball: unifiedImage() });
    fingerprints.add(result.fingerprint);
    const name = `${uniqueName('alias')}/with-slash`;
    const renamed = uniqueName('alias-renamed');
    aliases.add(name);
    aliases.add(renamed);
    await lxd.images.aliases.create({ name, target: result.fingerprint, description: 'first' });
    assert.ok((await lxd.images.aliases.names()).includes(name), 'names() has the new alias');
    assert.ok((await lxd.images.aliases.list()).some((a) => a.name === name && a.target === result.fingerprint));
    const entry = await lxd.images.aliases.get(name);
    assert.equal(entry.description, 'first');
    const etag = etagOf(entry);
    assert.ok(etag);
    await lxd.images.aliases.update(name, { target: result.fingerprint, description: 'second' }, { etag });
    await assert.rejects(
      lxd.images.aliases.update(name, { target: result.fingerprint, description: 'stale' }, { etag }),
      PreconditionFailedError,
    );
    await assert.rejects(lxd.images.aliases.create({ name, target: result.fingerprint }), LxdError);
    await lxd.images.aliases.rename(name, renamed);
    assert.equal(await lxd.images.aliases.exists(name), false);
    assert.equal((await lxd.images.aliases.get(renamed)).description, 'second');
    // set() moves an existing alias to another image, as `lxc image copy --alias` does.
    await lxd.images.aliases.set({ name: renamed, target: base.fingerprint });
    assert.equal((await lxd.images.aliases.get(renamed)).target, base.fingerprint);
    await lxd.images.aliases.patch(renamed, { target: result.fingerprint });
    assert.equal((await lxd.images.aliases.get(renamed)).target, result.fingerprint);
    await lxd.images.aliases.delete(renamed);
    await assert.rejects(lxd.images.aliases.get(renamed), NotFoundError);
    await remove(result.fingerprint);
  });

  test('secrets: one is made, and cancelling its operation revokes it', async () => {
    const result = await lxd.images.upload({ tarball: unifiedImage() });
    fingerprints.add(result.fingerprint);
    const { secret, operation } = await lxd.images.createSecret(result.fingerprint);
    assert.match(secret, /\S{16,}/);
    assert.equal((await operation.get()).status, 'Running');
    await operation.cancel();
    const done = await operation.settled();
    assert.equal(done.status, 'Cancelled');
    await remove(result.fingerprint);
  });

  test('publish: an image of an instance and of a snapshot, with properties and aliases', async () => {
    await withInstance(
      lxd,
      'publish',
      async (name) => {
        await lxd.instances.files.push(name, '/root/baked', 'in the image\n');
        await lxd.instances.snapshots.create(name, { name: 'snap0' });
        const alias = uniqueName('published');
        aliases.add(alias);
        const made = await lxd.images.publish(
          { instance: name },
          {
            aliases: [alias],
            properties: { os: 'busybox', description: 'vmplane test' },
            compressionAlgorithm: 'none',
          },
        );
        fingerprints.add(made.fingerprint);
        assert.match(made.fingerprint, /^[0-9a-f]{64}$/);
        assert.deepEqual(made.aliases, [alias]);
        const image = await lxd.images.get(made.fingerprint);
        assert.equal(image.properties?.os, 'busybox');
        assert.equal((await lxd.images.aliases.get(alias)).target, made.fingerprint);
        const fromSnapshot = await lxd.images.publish(
          { instance: name, snapshot: 'snap0' },
          { compressionAlgorithm: 'none' },
        );
        fingerprints.add(fromSnapshot.fingerprint);
        assert.ok(await lxd.images.exists(fromSnapshot.fingerprint));
        // An instance made from the published image has the file that was baked in.
        await withInstance(
          lxd,
          'frompub',
          async (child) => {
            const file = await lxd.instances.files.pull(child, '/root/baked');
            assert.ok(file.type === 'file' && file.content.toString() === 'in the image\n');
          },
          { image: alias },
        );
        await lxd.images.aliases.delete(alias);
        await remove(made.fingerprint);
        await remove(fromSnapshot.fingerprint);
      },
      { start: false },
    );
    await assert.rejects(lxd.images.publish({ instance: 'bad/name' }), InvalidArgumentError);
    await assert.rejects(lxd.images.publish({ instance: 'ok', snapshot: '../x' }), InvalidArgumentError);
    await assert.rejects(lxd.images.publish({ instance: uniqueName('missing') }), LxdError);
  });

  test('refresh of a local image (no source) fails typed', async () => {
    const result = await lxd.images.upload({ tarball: unifiedImage() });
    fingerprints.add(result.fingerprint);
    await assert.rejects(lxd.images.refresh(result.fingerprint), OperationFailedError);
    await remove(result.fingerprint);
  });

  test('abort mid-upload: AbortError, no image left behind', async () => {
    const tarball = unifiedImage(marker(), 400_000);
    const expected = sha256(tarball);
    const controller = new AbortController();
    let sent = 0;
    await assert.rejects(
      lxd.images.upload(
        { tarball: slowStream(tarball) },
        {
          signal: controller.signal,
          onProgress: (p) => {
            sent = p.bytes;
            if (p.bytes >= 32 * 1024) controller.abort();
          },
        },
      ),
      AbortError,
    );
    assert.ok(sent < tarball.length, 'aborted before the end');
    await sleep(300);
    assert.equal(await lxd.images.exists(expected), false);
  });

  test('timeout mid-upload: TimeoutError, no image left behind', async () => {
    const tarball = unifiedImage(marker(), 400_000);
    const expected = sha256(tarball);
    await assert.rejects(lxd.images.upload({ tarball: slowStream(tarball, 100) }, { timeout: 300 }), TimeoutError);
    await sleep(300);
    assert.equal(await lxd.images.exists(expected), false);
  });
});
