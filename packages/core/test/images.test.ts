import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, TimeoutError } from '@vmplane/common';
import {
  ChecksumNotFoundError,
  checkImageUrl,
  fetchChecksum,
  ImageCatalogue,
  ImageSourceError,
  parseChecksums,
  UnknownImageError,
} from '../src/images/index.js';
import { sha, startImageServer, tinyQcow2 } from './support/sim.js';

describe('image catalogue', () => {
  const catalogue = new ImageCatalogue();

  it('lists Debian 11-13, Ubuntu 20.04-24.04 and Rocky 8-10 with their official URLs', () => {
    assert.deepEqual(
      catalogue.list().map((i) => i.name),
      [
        'debian-11',
        'debian-12',
        'debian-13',
        'ubuntu-20.04',
        'ubuntu-22.04',
        'ubuntu-24.04',
        'rocky-8',
        'rocky-9',
        'rocky-10',
      ],
    );
    const debian = catalogue.get('debian-12');
    assert.equal(
      debian.url,
      'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
    );
    assert.equal(debian.checksumUrl, 'https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS');
    assert.equal(catalogue.get('debian-13').url.includes('/trixie/latest/debian-13-genericcloud-amd64.qcow2'), true);
    const ubuntu = catalogue.get('ubuntu-24.04');
    assert.equal(
      ubuntu.url,
      'https://cloud-images.ubuntu.com/releases/24.04/release/ubuntu-24.04-server-cloudimg-amd64.img',
    );
    assert.equal(ubuntu.checksumUrl, 'https://cloud-images.ubuntu.com/releases/24.04/release/SHA256SUMS');
    // PVE's import content takes .qcow2, not .img.
    assert.equal(ubuntu.storageFile, 'ubuntu-24.04-server-cloudimg-amd64.qcow2');
    const rocky = catalogue.get('rocky-9');
    assert.equal(
      rocky.url,
      'https://dl.rockylinux.org/pub/rocky/9/images/x86_64/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2',
    );
    assert.equal(rocky.checksumUrl, 'https://dl.rockylinux.org/pub/rocky/9/images/x86_64/CHECKSUM');
    assert.equal(rocky.checksumFormat, 'bsd');
    assert.equal(rocky.packageManager, 'dnf');
    assert.equal(debian.defaultUser, 'debian');
  });

  it("finds images by name and by go-pve-qemu's (os, version) pairs", () => {
    assert.equal(catalogue.get('debian/12').name, 'debian-12');
    assert.equal(catalogue.get('debian:12').name, 'debian-12');
    assert.equal(catalogue.find('debian', '12').name, 'debian-12');
    assert.equal(catalogue.find('rockylinux', '10').name, 'rocky-10');
    assert.equal(catalogue.find('ubuntu', '22.04').name, 'ubuntu-22.04');
    assert.throws(() => catalogue.get('debian-99'), UnknownImageError);
    assert.throws(() => catalogue.find('fedora', '40'), UnknownImageError);
    assert.equal(catalogue.has('local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst'), false);
  });

  it('applies a mirror per OS and refuses a base that is not a plain http(s) URL', () => {
    const mirrored = new ImageCatalogue({ mirrors: { debian: 'http://127.0.0.1:9/debian/' } });
    assert.equal(
      mirrored.get('debian-12').url,
      'http://127.0.0.1:9/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
    );
    assert.equal(mirrored.get('ubuntu-24.04').url.startsWith('https://cloud-images.ubuntu.com/'), true);
    assert.throws(() => new ImageCatalogue({ mirrors: { debian: 'ftp://x/y' } }), InvalidArgumentError);
    assert.throws(() => new ImageCatalogue({ mirrors: { debian: "http://x/a'b" } }), InvalidArgumentError);
    assert.throws(
      () => new ImageCatalogue({ mirrors: { fedora: 'http://x' } as unknown as { debian: string } }),
      InvalidArgumentError,
    );
  });
});

describe('checksum files', () => {
  const a = 'a'.repeat(64);
  const b = 'B'.repeat(128);

  it('reads GNU lines in text and binary mode, skipping what is not one', () => {
    const text = `${b}  debian-12-genericcloud-amd64.qcow2\n${'c'.repeat(128)}  ./debian-12-generic-amd64.raw\n# comment\nnot a line\n${'d'.repeat(10)}  short.qcow2\n`;
    const sums = parseChecksums(text, 'gnu', 'sha512');
    assert.deepEqual(sums.get('debian-12-genericcloud-amd64.qcow2'), { algorithm: 'sha512', hex: b.toLowerCase() });
    assert.ok(sums.has('debian-12-generic-amd64.raw'));
    assert.equal(sums.has('short.qcow2'), false);
    const ubuntu = parseChecksums(`${a} *ubuntu-24.04-server-cloudimg-amd64.img\r\n`, 'gnu', 'sha256');
    assert.deepEqual(ubuntu.get('ubuntu-24.04-server-cloudimg-amd64.img'), { algorithm: 'sha256', hex: a });
  });

  it("reads Rocky's BSD-style CHECKSUM between its comments", () => {
    const text = [
      '# Rocky-9-GenericCloud-Base-9.5-20241118.0.x86_64.qcow2: 609812480 bytes',
      `SHA256 (Rocky-9-GenericCloud-Base-9.5-20241118.0.x86_64.qcow2) = ${'1'.repeat(64)}`,
      '# Rocky-9-GenericCloud-Base.latest.x86_64.qcow2: 609812480 bytes',
      `SHA256 (Rocky-9-GenericCloud-Base.latest.x86_64.qcow2) = ${a}`,
    ].join('\n');
    const sums = parseChecksums(text, 'bsd', 'sha256');
    assert.equal(sums.size, 2);
    assert.deepEqual(sums.get('Rocky-9-GenericCloud-Base.latest.x86_64.qcow2'), { algorithm: 'sha256', hex: a });
  });
});

describe('fetching checksums', () => {
  it('reads the expected checksum from a loopback mirror, and HEADs the image', async () => {
    const image = tinyQcow2();
    const server = await startImageServer({
      '/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2': image,
      '/debian/bookworm/latest/SHA512SUMS': `${sha('sha512', image)}  debian-12-genericcloud-amd64.qcow2\n`,
      '/rocky/9/images/x86_64/CHECKSUM': `SHA256 (Rocky-9-GenericCloud-Base.latest.x86_64.qcow2) = ${sha('sha256', image)}\n`,
      '/ubuntu/24.04/release/SHA256SUMS': `${sha('sha256', 'other')} *ubuntu-22.04-server-cloudimg-amd64.img\n`,
    });
    const catalogue = new ImageCatalogue({
      mirrors: { debian: `${server.url}/debian`, rocky: `${server.url}/rocky`, ubuntu: `${server.url}/ubuntu` },
    });
    const debian = catalogue.get('debian-12');
    assert.deepEqual(await checkImageUrl(debian.url, { timeout: 5_000 }), { size: image.length });
    assert.deepEqual(await fetchChecksum(debian, { timeout: 5_000 }), {
      algorithm: 'sha512',
      hex: sha('sha512', image),
    });
    assert.deepEqual(await fetchChecksum(catalogue.get('rocky-9')), { algorithm: 'sha256', hex: sha('sha256', image) });

    await assert.rejects(fetchChecksum(catalogue.get('ubuntu-24.04')), (e: unknown) => {
      assert.ok(e instanceof ChecksumNotFoundError);
      assert.equal(e.file, 'ubuntu-24.04-server-cloudimg-amd64.img');
      return true;
    });
    await assert.rejects(checkImageUrl(catalogue.get('rocky-9').url), (e: unknown) => {
      assert.ok(e instanceof ImageSourceError);
      assert.equal(e.httpStatus, 404);
      return true;
    });
    assert.ok(server.requests.includes('HEAD /debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2'));
  });

  it('gives up on a stalled checksum file at its deadline, and on a closed port at once', async () => {
    const server = await startImageServer();
    server.stall('/debian/bookworm/latest/SHA512SUMS');
    const catalogue = new ImageCatalogue({ mirrors: { debian: `${server.url}/debian` } });
    await assert.rejects(fetchChecksum(catalogue.get('debian-12'), { timeout: 200 }), TimeoutError);
    await server.close();
    await assert.rejects(fetchChecksum(catalogue.get('debian-12'), { timeout: 5_000 }), ImageSourceError);
  });
});
