import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  AbortError,
  ConnectionError,
  createAgent,
  deadline,
  exchange,
  FingerprintMismatchError,
  fingerprintOf,
  InvalidArgumentError,
  TimeoutError,
  TlsVerificationError,
} from '@vmplane/common';
import { generate } from 'selfsigned';

/** A loopback server that counts connections and requests and lets each test choose its answer. */
function server(handler: http.RequestListener) {
  const counts = { connections: 0, requests: 0 };
  const srv = http.createServer((req, res) => {
    counts.requests++;
    handler(req, res);
  });
  srv.on('connection', () => counts.connections++);
  return {
    counts,
    async start() {
      await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
      return new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/x`);
    },
    stop: () =>
      new Promise<void>((ok) => {
        srv.closeAllConnections();
        srv.close(() => ok());
      }),
  };
}

const never = new AbortController().signal;

describe('exchange: bodies', () => {
  const received: Buffer[] = [];
  const s = server((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(Buffer.concat(chunks));
      res.end('ok');
    });
  });
  let url: URL;
  before(async () => {
    url = await s.start();
  });
  after(() => s.stop());

  test('a Uint8Array, an ArrayBuffer and an async iterable are sent as bytes', async () => {
    const bytes = new Uint8Array([104, 105, 33, 0, 255]);
    const bodies = [
      bytes,
      bytes.buffer.slice(0),
      new Uint8Array(new Uint8Array([0, 1, 2, 3, 4, 5, 6]).buffer, 2, 3),
      (async function* () {
        yield 'a';
        yield new Uint8Array([98]);
      })(),
    ];
    received.length = 0;
    for (const body of bodies) {
      const res = await exchange({ method: 'POST', url, body, signal: never });
      assert.equal(await res.text(), 'ok');
    }
    assert.deepEqual(
      received.map((b) => [...b]),
      [
        [104, 105, 33, 0, 255],
        [104, 105, 33, 0, 255],
        [2, 3, 4],
        [97, 98],
      ],
    );
  });

  test('a body of the wrong type is refused before a connection exists', async () => {
    const before = { ...s.counts };
    for (const body of [null, 42, { a: 1 }, true, Symbol('x')]) {
      await assert.rejects(
        exchange({ method: 'PUT', url, body: body as never, signal: never }),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'body',
      );
    }
    await assert.rejects(
      exchange({ method: 'GET', url, headers: { 'X-Bad': 'a\r\nInjected: 1' }, signal: never }),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'headers',
    );
    assert.deepEqual(s.counts, before);
  });
});

describe('exchange: a streamed body is released when the exchange ends early', () => {
  let dir: string;
  let file: string;
  const s = server((_req, res) => {
    // Answers at once, without reading the upload, as LXD does for a missing instance.
    res.statusCode = 404;
    res.end('{"error":"not found"}');
  });
  let url: URL;
  before(async () => {
    url = await s.start();
    dir = await mkdtemp(join(tmpdir(), 'vmplane-http-'));
    file = join(dir, 'big');
    await writeFile(file, Buffer.alloc(32 * 1024 * 1024, 7));
  });
  after(async () => {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("an answer before the upload finished closes the caller's file stream", async () => {
    const stream = createReadStream(file);
    const closed = new Promise<void>((ok) => stream.once('close', ok));
    const res = await exchange({ method: 'POST', url, body: stream, signal: never });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /not found/);
    await closed;
    assert.equal(stream.destroyed, true);
  });

  test("an abort closes the caller's stream and says the request may have been sent", async () => {
    const slow = new Readable({ read() {} });
    slow.push(Buffer.alloc(1024));
    const silent = http.createServer(() => {});
    await new Promise<void>((ok) => silent.listen(0, '127.0.0.1', ok));
    const target = new URL(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/y`);
    const controller = new AbortController();
    const d = deadline({ signal: controller.signal });
    try {
      const arrived = new Promise((ok) => silent.once('request', ok));
      const pending = exchange({ method: 'POST', url: target, body: slow, signal: d.signal });
      await arrived;
      controller.abort();
      await assert.rejects(pending, (e: unknown) => {
        assert.ok(e instanceof AbortError);
        assert.equal(e.sent, true);
        assert.match(e.message, /had been sent/);
        return true;
      });
      assert.equal(slow.destroyed, true);
    } finally {
      d.dispose();
      silent.closeAllConnections();
      silent.close();
    }
  });

  test('an abort before the request left says nothing was sent', async () => {
    const d = deadline({ signal: AbortSignal.abort() });
    await assert.rejects(
      exchange({ method: 'POST', url, body: 'x', signal: d.signal }),
      (e: unknown) => e instanceof AbortError && e.sent === false && !/sent/.test(e.message),
    );
    d.dispose();
  });
});

describe('exchange: the answer stream fails with typed errors', () => {
  const s = server((req, res) => {
    res.writeHead(200, { 'Content-Length': String(1024 * 1024) });
    res.write(Buffer.alloc(64 * 1024));
    // /cut drops the connection mid-answer; others stall until the client gives up.
    if (req.url === '/cut') setImmediate(() => res.socket?.destroy());
  });
  let url: URL;
  before(async () => {
    url = await s.start();
  });
  after(() => s.stop());

  test('a cut connection is a ConnectionError, not a bare Error: aborted', async () => {
    const res = await exchange({ method: 'GET', url: new URL('/cut', url), signal: never });
    await assert.rejects(
      (async () => {
        for await (const _ of res.stream) {
        }
      })(),
      (e: unknown) => e instanceof ConnectionError && e.sent === true && /mid-answer/.test(e.message),
    );
    const again = await exchange({ method: 'GET', url: new URL('/cut', url), signal: never });
    await assert.rejects(again.buffer(), ConnectionError);
  });

  test('discarding an answer whose stream was taken ends the stream quietly', async () => {
    const res = await exchange({ method: 'GET', url: new URL('/stall', url), signal: never });
    const stream = res.stream;
    let failed: unknown;
    stream.on('error', (e) => {
      failed = e;
    });
    const closed = new Promise((ok) => stream.once('close', ok));
    res.discard();
    await closed;
    assert.equal(stream.destroyed, true);
    assert.equal(failed, undefined);
  });

  test('the deadline firing while the body is read is its TimeoutError', async () => {
    const d = deadline({ timeout: 30 });
    try {
      const res = await exchange({ method: 'GET', url: new URL('/stall', url), signal: d.signal });
      await assert.rejects(
        (async () => {
          for await (const _ of res.stream) {
          }
        })(),
        (e: unknown) => e instanceof TimeoutError && e.sent === true,
      );
    } finally {
      d.dispose();
    }
  });
});

describe('exchange over TLS with a pinned certificate', () => {
  let srv: https.Server;
  let url: URL;
  let cert: string;
  let requests = 0;
  before(async () => {
    const pems = await generate([{ name: 'commonName', value: 'vmplane-test' }], { keySize: 2048 });
    cert = pems.cert;
    srv = https.createServer({ key: pems.private, cert: pems.cert }, (_req, res) => {
      requests++;
      res.end('secret-free');
    });
    await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
    url = new URL(`https://127.0.0.1:${(srv.address() as AddressInfo).port}/z`);
  });
  after(() => {
    srv.closeAllConnections();
    srv.close();
  });

  test('the pinned certificate is accepted whatever its name', async () => {
    const agent = createAgent(url, { serverCert: cert });
    const res = await exchange({ method: 'GET', url, agent, signal: never });
    assert.equal(await res.text(), 'secret-free');
    agent.destroy();
  });

  test('another certificate is a final FingerprintMismatchError and no request reaches the server', async () => {
    const before = requests;
    const wrong = 'ab'.repeat(32);
    const agent = createAgent(url, { fingerprint: wrong });
    await assert.rejects(
      exchange({ method: 'GET', url, agent, headers: { Cookie: 'PVEAuthCookie=s3cret' }, signal: never }),
      (e: unknown) => {
        assert.ok(e instanceof FingerprintMismatchError);
        assert.ok(e instanceof TlsVerificationError && e instanceof ConnectionError);
        assert.equal(e.sent, false);
        assert.equal(e.expected, wrong);
        assert.equal(e.actual, fingerprintOf(cert));
        return true;
      },
    );
    assert.equal(requests, before);
    agent.destroy();
  });

  test('an unknown CA is a TlsVerificationError that says nothing was sent', async () => {
    const agent = createAgent(url, {});
    await assert.rejects(
      exchange({ method: 'GET', url, agent, signal: never }),
      (e: unknown) =>
        e instanceof TlsVerificationError && e.sent === false && e.syscallCode === 'DEPTH_ZERO_SELF_SIGNED_CERT',
    );
    agent.destroy();
  });
});
