import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AbortError,
  ConnectionError,
  InvalidArgumentError,
  LxdClient,
  LxdError,
  LxdTransport,
  RateLimitedError,
  ServerError,
  TimeoutError,
} from '@vmplane/lxd';
import { capturingLogger } from './support/capture.js';

/**
 * What no real daemon produces on demand (a 503 storm, a server that never answers) is played by
 * a small HTTP server on a real unix socket, so the client's retry and deadline logic runs for real.
 */
describe('transport behaviour under faults', () => {
  let dir: string;
  let server: Server;
  let socketPath: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  const seen: string[] = [];
  const received: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmpt-mock-'));
    socketPath = join(dir, 'mock.socket');
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const reset = () => {
    seen.length = 0;
    received.length = 0;
  };
  const json = (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const ok = (res: ServerResponse, metadata: unknown = []) =>
    json(res, 200, { type: 'sync', status_code: 200, metadata });
  const client = (opts: { logger?: ReturnType<typeof capturingLogger>; attempts?: number } = {}) =>
    LxdClient.connect({
      socketPath,
      skipGetServer: true,
      retry: { attempts: opts.attempts ?? 4, initial: 5, max: 20 },
      logger: opts.logger,
    });
  const openConnections = () => new Promise<number>((resolve) => server.getConnections((_e, count) => resolve(count)));

  test('reads retry through a 503 storm, with backoff, until an answer', async () => {
    reset();
    let n = 0;
    handler = (_req, res) => {
      n++;
      if (n <= 3) json(res, 503, { type: 'error', error: 'busy', error_code: 503 });
      else ok(res, ['/1.0/profiles/default']);
    };
    const lxd = await client();
    assert.deepEqual(await lxd.profiles.names(), ['default']);
    assert.equal(seen.length, 4);
    lxd.close();
  });

  test('a storm longer than the retry budget surfaces the typed 503', async () => {
    reset();
    handler = (_req, res) => json(res, 503, { type: 'error', error: 'still busy', error_code: 503 });
    const lxd = await client();
    await assert.rejects(
      lxd.profiles.names(),
      (e: unknown) => e instanceof ServerError && e instanceof LxdError && e.status === 503,
    );
    assert.equal(seen.length, 4);
    lxd.close();
  });

  test('Retry-After is honoured in seconds and as an HTTP date, and put on the error', async () => {
    const logger = capturingLogger();
    const lxd = await client({ logger, attempts: 2 });
    try {
      // The date is made as the server answers: made earlier, the first round's wait would already
      // have eaten into it. toUTCString drops the milliseconds, so 2 s ahead leaves more than 1 s.
      const forms: Array<() => string> = [() => '1', () => new Date(Date.now() + 2_000).toUTCString()];
      for (const form of forms) {
        reset();
        logger.lines.length = 0;
        let n = 0;
        let header = '';
        let asked = 0;
        handler = (_req, res) => {
          if (n++ === 0) {
            header = form();
            asked = header === '1' ? 1_000 : Date.parse(header) - Date.now();
            json(res, 503, { type: 'error', error: 'busy', error_code: 503 }, { 'Retry-After': header });
          } else ok(res, ['/1.0/profiles/default']);
        };
        assert.deepEqual(await lxd.profiles.names(), ['default']);
        const waits = logger.lines.filter((l) => l.level === 'warn').map((l) => l.fields.delayMs as number);
        assert.equal(waits.length, 1, `one retry for Retry-After: ${header}`);
        const waited = waits[0] as number;
        // The server's wait, not the backoff's (5 to 20 ms here), and never more than it asked
        // (a date is read in whole seconds, rounded up from what is left of it).
        assert.ok(waited > 20, `waited ${waited} ms for Retry-After: ${header}`);
        assert.ok(waited <= Math.ceil(asked / 1_000) * 1_000, `waited ${waited} ms, asked ${asked} ms`);
      }
      // Longer than anyone should wait: not retried, and the error says how long the server asked.
      reset();
      handler = (_req, res) =>
        json(res, 503, { type: 'error', error: 'busy', error_code: 503 }, { 'Retry-After': '120' });
      await assert.rejects(lxd.profiles.names(), (e: unknown) => e instanceof ServerError && e.retryAfter === 120);
      assert.equal(seen.length, 1);
      // A mutation is never repeated, yet its error keeps the server's figure.
      reset();
      handler = (_req, res) =>
        json(res, 429, { type: 'error', error: 'slow down', error_code: 429 }, { 'Retry-After': '3' });
      await assert.rejects(
        lxd.profiles.create({ name: 'vmpt-mock' }),
        (e: unknown) => e instanceof RateLimitedError && e.retryAfter === 3,
      );
      assert.equal(seen.length, 1);
    } finally {
      lxd.close();
    }
  });

  test('mutations are never retried after they may have been received', async () => {
    reset();
    handler = (_req, res) => json(res, 503, { type: 'error', error: 'busy', error_code: 503 });
    const lxd = await client();
    await assert.rejects(lxd.profiles.create({ name: 'vmpt-mock' }), ServerError);
    assert.deepEqual(seen, ['POST /1.0/profiles']);
    reset();
    handler = (req) => req.socket.destroy();
    await assert.rejects(lxd.profiles.create({ name: 'vmpt-mock' }), ConnectionError);
    assert.deepEqual(seen, ['POST /1.0/profiles'], 'a dropped POST is not sent again');
    reset();
    await assert.rejects(lxd.profiles.names(), ConnectionError);
    assert.equal(seen.length, 4, 'a dropped GET is retried');
    lxd.close();
  });

  test('a refused connection is retried for any method, since nothing was sent', async () => {
    // Nobody listens at first; after the second retry warning a server starts listening there,
    // so the POST succeeds only if it was attempted three times.
    const late = join(dir, 'late.socket');
    const posts: string[] = [];
    const lateServer = createServer((req, res) => {
      posts.push(`${req.method} ${req.url}`);
      ok(res, {});
    });
    const logger = capturingLogger((line) => {
      if (line.level === 'warn' && logger.lines.filter((l) => l.level === 'warn').length === 2) lateServer.listen(late);
    });
    const lxd = await LxdClient.connect({
      socketPath: late,
      skipGetServer: true,
      retry: { attempts: 3, initial: 5, max: 10 },
      logger,
    });
    try {
      await lxd.profiles.create({ name: 'vmpt-late' });
      assert.deepEqual(posts, ['POST /1.0/profiles'], 'sent once, when someone listened');
      const warnings = logger.lines.filter((l) => l.level === 'warn');
      assert.deepEqual(
        warnings.map((l) => l.fields.attempt),
        [1, 2],
      );
    } finally {
      lxd.close();
      lateServer.closeAllConnections();
      await new Promise<void>((resolve) => lateServer.close(() => resolve()));
    }
    // With one attempt there is no retry: the same refusal is final, and says nothing was sent.
    const once = await LxdClient.connect({
      socketPath: join(dir, 'nobody-listens'),
      skipGetServer: true,
      retry: { attempts: 1 },
    });
    await assert.rejects(
      once.profiles.create({ name: 'vmpt-x' }),
      (e: unknown) => e instanceof ConnectionError && e.sent === false,
    );
    once.close();
  });

  test('timeout and abort mid-call are told apart, say the request was sent, and leave no socket behind', async () => {
    handler = () => {
      // never answers
    };
    const lxd = await client();
    await assert.rejects(lxd.profiles.names({ timeout: 50 }), (e: unknown) => e instanceof TimeoutError && e.sent);
    const controller = new AbortController();
    const pending = lxd.profiles.names({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, (e: unknown) => e instanceof AbortError && e.sent && /had been sent/.test(e.message));
    // Aborted before anything left: nothing was sent, and the error says so.
    reset();
    await assert.rejects(
      lxd.profiles.create({ name: 'vmpt-x' }, { signal: AbortSignal.abort() }),
      (e: unknown) => e instanceof AbortError && e.sent === false,
    );
    assert.equal(seen.length, 0);
    lxd.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await openConnections(), 0);
  });

  test('a raw answer can be dropped after its stream was taken, without an unhandled error', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      // The body never ends: dropping it cuts the connection mid-answer.
      res.write(Buffer.alloc(64 * 1024));
    };
    const lxd = await client();
    const unhandled: unknown[] = [];
    const onUncaught = (e: unknown) => unhandled.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const res = await lxd.transport.raw({ method: 'GET', path: '/1.0/instances/x/files' });
      const stream = res.stream;
      res.discard();
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(stream.destroyed);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      lxd.close();
    }
  });

  test('an HTML or garbage answer is a typed error, not a crash', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html>proxy error</html>');
    };
    const lxd = await client();
    await assert.rejects(lxd.profiles.names(), ServerError);
    lxd.close();
  });

  test('bad timeouts and signals are refused before anything is sent; long ones do not fire early', async () => {
    reset();
    handler = (_req, res) => ok(res, []);
    const lxd = await client();
    const bad: unknown[] = ['abc', -1, Number.NaN, '100', null, {}, () => 1];
    const calls: [string, (opts: object) => Promise<unknown>][] = [
      ['profiles.names', (o) => lxd.profiles.names(o)],
      ['profiles.create', (o) => lxd.profiles.create({ name: 'vmpt-x' }, o)],
      ['instances.get', (o) => lxd.instances.get('vmpt-x', o)],
      ['instances.start', (o) => lxd.instances.start('vmpt-x', o)],
      ['instances.delete', (o) => lxd.instances.delete('vmpt-x', { force: true, ...o })],
      ['instances.copy', (o) => lxd.instances.copy('vmpt-x', 'vmpt-y', o)],
      ['instances.createFromImage', (o) => lxd.instances.createFromImage('vmpt-x', { alias: 'a' }, {}, o)],
      ['files.push', (o) => lxd.instances.files.push('vmpt-x', '/root/f', 'x', o)],
      ['files.pull', (o) => lxd.instances.files.pull('vmpt-x', '/root/f', o)],
      ['files.mkdir', (o) => lxd.instances.files.mkdir('vmpt-x', '/a/b', { parents: true, ...o })],
      ['images.upload', (o) => lxd.images.upload({ tarball: Buffer.from('x') }, o)],
      ['images.delete', (o) => lxd.images.delete('abcdef', o)],
      ['images.export', (o) => lxd.images.export('abcdef', o)],
      ['operations.wait', (o) => lxd.operations.wait('x', o)],
      ['storage.volumes.copy', (o) => lxd.storagePools.volumes.copy('default', 'a', 'b', o)],
      ['server.get', (o) => lxd.server.get(o)],
    ];
    for (const [what, call] of calls) {
      for (const timeout of bad) {
        await assert.rejects(
          call({ timeout }),
          (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'timeout',
          `${what} with timeout ${String(timeout)}`,
        );
      }
      await assert.rejects(
        call({ signal: 'soon' }),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'signal',
        `${what} with a signal that is not one`,
      );
    }
    assert.deepEqual(seen, [], 'nothing reached the server');
    assert.throws(() => new LxdTransport({ socketPath, timeout: -5 }), InvalidArgumentError);
    // Beyond setTimeout's 32-bit range: the call is answered instead of timing out at once.
    assert.deepEqual(await lxd.profiles.names({ timeout: 2 ** 31 }), []);
    assert.deepEqual(await lxd.profiles.names({ timeout: 2 ** 40 }), []);
    const longDefault = await LxdClient.connect({ socketPath, skipGetServer: true, timeout: 2 ** 31 + 5 });
    assert.deepEqual(await longDefault.profiles.names(), []);
    longDefault.close();
    lxd.close();
  });

  test("a caller's options bag travels no further than signal, timeout and project", async () => {
    reset();
    // Reads answer an empty object; changes answer an operation that has already succeeded.
    handler = (req, res) =>
      req.method === 'GET'
        ? ok(res, { status: 'Stopped' })
        : json(res, 202, {
            type: 'async',
            status_code: 100,
            // `return` lets a recorded exec end with exit 0 and no output.
            metadata: { id: 'vmpt-op', status: 'Success', status_code: 200, metadata: { return: 0 } },
          });
    const lxd = await client();
    const bag = {
      headers: { 'X-Smuggled': 'yes' },
      body: { smuggled: true },
      rawBody: 'smuggled',
      query: { smuggled: '1' },
      etag: 'smuggled-etag',
      onUploadProgress: () => {},
    } as object;
    await lxd.instances.get('vmpt-x', bag);
    await lxd.instances.delete('vmpt-x', bag);
    await lxd.profiles.delete('vmpt-x', bag);
    await lxd.instances.files.delete('vmpt-x', '/root/f', bag);
    await lxd.networks.state('vmpt-x', bag);
    await lxd.instances.importBackup(Buffer.from('tar'), bag);
    await lxd.instances.console.log('vmpt-x', bag);
    await lxd.instances.console.clearLog('vmpt-x', bag);
    const recorded = await lxd.instances.execRecorded('vmpt-x', { ...bag, command: ['true'] });
    assert.equal(recorded.exitCode, 0);
    assert.ok(received.some((r) => r.method === 'POST' && r.url.startsWith('/1.0/instances/vmpt-x/exec')));
    assert.ok(received.length >= 10);
    for (const r of received) {
      assert.equal(r.headers['x-smuggled'], undefined, `${r.method} ${r.url}`);
      assert.equal(r.headers['if-match'], undefined, `${r.method} ${r.url}`);
      assert.doesNotMatch(r.url, /smuggled/);
      assert.doesNotMatch(r.body, /smuggled/);
    }
    lxd.close();
  });

  test('a body that cannot be JSON is refused before anything is sent', async () => {
    reset();
    const lxd = await client();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(lxd.profiles.create(cyclic as { name: string }), InvalidArgumentError);
    await assert.rejects(
      lxd.profiles.create({ name: 'vmpt-x', config: { n: 1n } as unknown as Record<string, string> }),
      InvalidArgumentError,
    );
    assert.deepEqual(seen, []);
    lxd.close();
  });

  test('promise-returning calls reject instead of throwing, whatever they are given', async () => {
    reset();
    const lxd = await client();
    const calls: [string, () => Promise<unknown>][] = [
      ['createFromImage without alias', () => lxd.instances.createFromImage('vmpt-x', {})],
      ['createFromImage with null', () => lxd.instances.createFromImage('vmpt-x', null as never)],
      ['create with null', () => lxd.instances.create(null as never)],
      ['copy of a number', () => lxd.instances.copy(42 as never, 'vmpt-y')],
      ['setState with a bad action', () => lxd.instances.setState('vmpt-x', 'explode' as never)],
      ['importBackup of a number', () => lxd.instances.importBackup(42 as never)],
      ['backups.createOperation with null', () => lxd.instances.backups.createOperation('vmpt-x', null as never)],
      ['images.upload of null', () => lxd.images.upload(null as never)],
      ['images.list with a bad filter', () => lxd.images.list({ filter: 42 as never })],
      ['aliases.exists of a bad name', () => lxd.images.aliases.exists('')],
      ['profiles.exists of a bad name', () => lxd.profiles.exists('a/b')],
      ['files.push with a bad mode', () => lxd.instances.files.push('vmpt-x', '/f', 'x', { mode: -1 })],
      ['operations.wait with a bad timeout', () => lxd.operations.wait('x', { timeout: -1 })],
      ['transport.websocket with a bad timeout', () => lxd.transport.websocket('/1.0/events', {}, { timeout: -1 })],
      ['transport.upgrade with a bad timeout', () => lxd.transport.upgrade('/1.0/x', 'sftp', { timeout: -1 })],
      ['transport.request of a bad method', () => lxd.transport.request({ method: 'BREW' as never, path: '/1.0' })],
      ['withProject list with both', () => lxd.instances.list({ allProjects: true, project: 'p' })],
    ];
    for (const [what, call] of calls) {
      let pending: Promise<unknown> | undefined;
      assert.doesNotThrow(() => {
        pending = call();
      }, what);
      await assert.rejects(pending as Promise<unknown>, InvalidArgumentError, what);
    }
    assert.deepEqual(seen, []);
    lxd.close();
  });

  test('close() of a client also closes the connections of the clients withProject made', async () => {
    handler = (_req, res) => ok(res, []);
    const lxd = await client();
    const scoped = lxd.withProject('vmpt-p');
    const deeper = scoped.withProject('vmpt-q');
    reset();
    await Promise.all([lxd.profiles.names(), scoped.profiles.names(), deeper.profiles.names()]);
    assert.deepEqual(seen.sort(), [
      'GET /1.0/profiles',
      'GET /1.0/profiles?project=vmpt-p',
      'GET /1.0/profiles?project=vmpt-q',
    ]);
    assert.ok((await openConnections()) > 0, 'keep-alive connections are open');
    lxd.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await openConnections(), 0, 'none left open after the parent closed');
    // They still work afterwards, on new connections.
    assert.deepEqual(await scoped.profiles.names(), []);
    scoped.close();
    lxd.close();
  });
});
