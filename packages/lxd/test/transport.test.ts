import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AbortError, ConnectionError, LxdClient, LxdError, ServerError, TimeoutError } from '@vmplane/lxd';

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

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmpt-mock-'));
    socketPath = join(dir, 'mock.socket');
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const json = (res: ServerResponse, status: number, body: object) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const client = () =>
    LxdClient.connect({ socketPath, skipGetServer: true, retry: { attempts: 4, initial: 5, max: 20 } });

  test('reads retry through a 503 storm, with backoff, until an answer', async () => {
    seen.length = 0;
    let n = 0;
    handler = (_req, res) => {
      n++;
      if (n <= 3) json(res, 503, { type: 'error', error: 'busy', error_code: 503 });
      else json(res, 200, { type: 'sync', status_code: 200, metadata: ['/1.0/profiles/default'] });
    };
    const lxd = await client();
    assert.deepEqual(await lxd.profiles.names(), ['default']);
    assert.equal(seen.length, 4);
    lxd.close();
  });

  test('a storm longer than the retry budget surfaces the typed 503', async () => {
    seen.length = 0;
    handler = (_req, res) => json(res, 503, { type: 'error', error: 'still busy', error_code: 503 });
    const lxd = await client();
    await assert.rejects(
      lxd.profiles.names(),
      (e: unknown) => e instanceof ServerError && e instanceof LxdError && e.status === 503,
    );
    assert.equal(seen.length, 4);
    lxd.close();
  });

  test('mutations are never retried after they may have been received', async () => {
    seen.length = 0;
    handler = (_req, res) => json(res, 503, { type: 'error', error: 'busy', error_code: 503 });
    const lxd = await client();
    await assert.rejects(lxd.profiles.create({ name: 'vmpt-mock' }), ServerError);
    assert.deepEqual(seen, ['POST /1.0/profiles']);
    seen.length = 0;
    handler = (req) => req.socket.destroy();
    await assert.rejects(lxd.profiles.create({ name: 'vmpt-mock' }), ConnectionError);
    assert.deepEqual(seen, ['POST /1.0/profiles'], 'a dropped POST is not sent again');
    seen.length = 0;
    await assert.rejects(lxd.profiles.names(), ConnectionError);
    assert.equal(seen.length, 4, 'a dropped GET is retried');
    lxd.close();
  });

  test('a refused connection is retried for any method, since nothing was sent', async () => {
    const lxd = await LxdClient.connect({
      socketPath: join(dir, 'nobody-listens'),
      skipGetServer: true,
      retry: { attempts: 3, initial: 5 },
    });
    await assert.rejects(
      lxd.profiles.create({ name: 'vmpt-x' }),
      (e: unknown) => e instanceof ConnectionError && e.sent === false,
    );
    lxd.close();
  });

  test('timeout and abort mid-call are told apart, and leave no socket behind', async () => {
    handler = () => {
      // never answers
    };
    const lxd = await client();
    await assert.rejects(lxd.profiles.names({ timeout: 50 }), TimeoutError);
    const controller = new AbortController();
    const pending = lxd.profiles.names({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, AbortError);
    lxd.close();
    await new Promise((r) => setTimeout(r, 50));
    const open = await new Promise<number>((resolve) => server.getConnections((_e, count) => resolve(count)));
    assert.equal(open, 0);
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
});
