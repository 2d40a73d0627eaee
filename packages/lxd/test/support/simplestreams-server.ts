/**
 * A SimpleStreams image server for tests: serves the locally built busybox image (split: a
 * metadata tarball and the squashfs rootfs) on 127.0.0.1, over http or https (self-signed
 * certificate made with the openssl CLI). Each server's metadata carries a unique marker, so its
 * fingerprint is new to the daemon and tests can delete what they pulled without touching anything else.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCertificate } from './certs.js';
import { marker, splitMetadata } from './images-tar.js';
import { IMAGE_DIR, PREFIX } from './lxd.js';

export interface SimpleStreamsServerOptions {
  /** Where scripts/lib.sh built the images (default IMAGE_DIR). */
  imageDir?: string;
  /** Serve https with a fresh self-signed certificate (its PEM is `certificate`). */
  https?: boolean;
  /** Product alias (comma list allowed). Default `vmpt-busybox-<random>`. */
  aliases?: string;
  /** Pause between 64 KiB chunks of the rootfs, so the daemon reports download progress. */
  throttleMs?: number;
  /** Advertise a wrong sha256 for the rootfs (to test verification). */
  corruptRootfsHash?: boolean;
}

export interface PublishedVersion {
  serial: string;
  fingerprint: string;
  metadata: Buffer;
}

export interface SimpleStreamsServer {
  url: string;
  /** PEM of the server's certificate (https only). */
  certificate: string | undefined;
  /** The product's aliases as served (the first is the plain alias). */
  alias: string;
  rootfs: Buffer;
  versions: PublishedVersion[];
  /** The newest version's fingerprint. */
  readonly fingerprint: string;
  /** Paths requested so far. */
  requests: string[];
  /**
   * Drops the daemon's cached copy of this server's index and products (LXD 5.0.2 keeps them an
   * hour in <cache dir>/<sha256 of the URL>), so LXD reads them again. close() does it too.
   */
  forgetInLxdCache(): void;
  /** Adds a newer version (new metadata, so a new fingerprint) and returns it. */
  publish(): PublishedVersion;
  close(): Promise<void>;
}

/**
 * Where the daemon may cache SimpleStreams indexes: `$LXD_DIR/cache` when it was started with
 * LXD_DIR set (as scripts/lib.sh does), `/var/cache/lxd` otherwise. LXD_CACHE_DIR names one exactly.
 */
const LXD_CACHES = process.env.LXD_CACHE_DIR
  ? [process.env.LXD_CACHE_DIR]
  : [join(process.env.LXD_DIR ?? '/var/lib/lxd', 'cache'), '/var/cache/lxd'];
const PRODUCT = 'vmplane:busybox:1.35:amd64:default';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function startSimpleStreamsServer(opts: SimpleStreamsServerOptions = {}): Promise<SimpleStreamsServer> {
  const dir = opts.imageDir ?? IMAGE_DIR;
  const rootfs = readFileSync(join(dir, 'split-rootfs.squashfs'));
  const alias = opts.aliases ?? `${PREFIX}busybox-${marker().slice(0, 6)}`;
  const versions: PublishedVersion[] = [];
  let day = 1;
  const publish = (): PublishedVersion => {
    const serial = `202401${String(day++).padStart(2, '0')}_00:00`;
    const metadata = splitMetadata(`${PREFIX}ss-${serial}-${marker()}`);
    const v = { serial, metadata, fingerprint: sha(Buffer.concat([metadata, rootfs])) };
    versions.push(v);
    return v;
  };
  publish();

  const fileDir = (serial: string) => `images/busybox/${serial.replace(/[^0-9_]/g, '')}`;
  const index = () => ({
    format: 'index:1.0',
    index: {
      images: {
        datatype: 'image-downloads',
        path: 'streams/v1/images.json',
        format: 'products:1.0',
        products: [PRODUCT],
      },
    },
  });
  const products = () => ({
    content_id: 'images',
    datatype: 'image-downloads',
    format: 'products:1.0',
    products: {
      [PRODUCT]: {
        aliases: alias,
        arch: 'amd64',
        os: 'busybox',
        release: '1.35',
        release_title: '1.35',
        variant: 'default',
        versions: Object.fromEntries(
          versions.map((v) => [
            v.serial,
            {
              items: {
                'lxd.tar.xz': {
                  ftype: 'lxd.tar.xz',
                  path: `${fileDir(v.serial)}/lxd.tar.xz`,
                  size: v.metadata.length,
                  sha256: sha(v.metadata),
                  combined_sha256: v.fingerprint,
                  combined_squashfs_sha256: v.fingerprint,
                },
                'root.squashfs': {
                  ftype: 'squashfs',
                  path: `${fileDir(v.serial)}/rootfs.squashfs`,
                  size: rootfs.length,
                  sha256: opts.corruptRootfsHash ? sha(Buffer.from('not the rootfs')) : sha(rootfs),
                },
              },
            },
          ]),
        ),
      },
    },
  });

  const requests: string[] = [];
  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url.pathname);
    const json = (body: unknown) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/streams/v1/index.json') return json(index());
    if (url.pathname === '/streams/v1/images.json') return json(products());
    for (const v of versions) {
      const base = `/${fileDir(v.serial)}`;
      if (url.pathname === `${base}/lxd.tar.xz`) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': v.metadata.length });
        res.end(v.metadata);
        return;
      }
      if (url.pathname === `${base}/rootfs.squashfs`) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': rootfs.length });
        void (async () => {
          for (let i = 0; i < rootfs.length && !res.destroyed; i += 65536) {
            if (opts.throttleMs) await sleep(opts.throttleMs);
            if (!res.write(rootfs.subarray(i, i + 65536))) await new Promise((r) => res.once('drain', r));
          }
          res.end();
        })().catch(() => res.destroy());
        return;
      }
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  };

  let certificate: string | undefined;
  let server: http.Server;
  if (opts.https) {
    const tmp = mkdtempSync(join(tmpdir(), 'vmpt-ss-'));
    try {
      const made = await makeCertificate(tmp, '127.0.0.1', { san: 'IP:127.0.0.1' });
      certificate = made.cert;
      server = https.createServer({ cert: made.cert, key: made.key }, handler);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } else {
    server = http.createServer(handler);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}`;
  const forgetInLxdCache = () => {
    for (const cache of LXD_CACHES) rmSync(join(cache, sha(Buffer.from(url))), { recursive: true, force: true });
  };
  return {
    url,
    certificate,
    alias: alias.split(',')[0] ?? alias,
    rootfs,
    versions,
    get fingerprint() {
      return (versions[versions.length - 1] as PublishedVersion).fingerprint;
    },
    requests,
    forgetInLxdCache,
    publish,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      forgetInLxdCache();
    },
  };
}
