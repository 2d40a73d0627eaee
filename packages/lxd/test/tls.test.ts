import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AbortError,
  ConnectionError,
  FingerprintMismatchError,
  ForbiddenError,
  LxdClient,
  LxdOperation,
  NotFoundError,
  type Operation,
  OperationFailedError,
  SimpleStreamsClient,
  TimeoutError,
  TlsVerificationError,
} from '@vmplane/lxd';
import { assertNoSecrets, printed, serialiseError, thrown } from '../../common/test/support/printed.js';
import { makeCertificate } from './support/certs.js';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';
import { type CountingTlsServer, startCountingTlsServer } from './support/tls-server.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

describe('TLS with a client certificate', () => {
  let local: LxdClient;
  let dir: string;
  let address: string;
  let previousAddress: string | undefined;
  let serverCert: string;

  before(async () => {
    local = await connect();
    dir = await mkdtemp(join(tmpdir(), 'vmpt-tls-'));
    const server = await local.server.get();
    previousAddress = server.config['core.https_address'] as string | undefined;
    if (previousAddress) address = previousAddress.startsWith(':') ? `127.0.0.1${previousAddress}` : previousAddress;
    else {
      address = `127.0.0.1:${await freePort()}`;
      await local.server.patch({ config: { 'core.https_address': address } });
    }
    serverCert = (await local.server.get()).environment.certificate;
  });

  after(async () => {
    if (!previousAddress) await local.server.patch({ config: { 'core.https_address': '' } }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    local.close();
  });

  test('an untrusted client joins with a trust token, then works, then is removed', async () => {
    const name = uniqueName('tls');
    const client = await makeCertificate(dir, name);
    const { token, operationId } = await local.certificates.createToken(name);
    const remote = await LxdClient.connect({
      url: `https://${address}`,
      cert: client.cert,
      key: client.key,
      serverCert,
    });
    try {
      assert.equal(remote.isTrusted, false);
      const untrusted = await remote.server.get();
      assert.equal(untrusted.auth, 'untrusted');
      await assert.rejects(remote.instances.names(), ForbiddenError);
      await remote.server.trust({ password: token });
      await remote.refreshServer();
      assert.equal(remote.isTrusted, true);
      assert.ok(Array.isArray(await remote.instances.names()));
      const events = remote.events({ types: ['lifecycle'] });
      await events.ready();
      events.close();
      const trusted = await local.certificates.get(client.fingerprint);
      assert.equal(trusted.name, name);
    } finally {
      remote.close();
      await local.certificates.delete(client.fingerprint).catch(() => {});
      await local.certificates.revokeToken(operationId).catch(() => {});
    }
    await assert.rejects(local.certificates.get(client.fingerprint), NotFoundError);
  });

  test('no client key or websocket secret is reachable by printing a client, transport, operation or error', async () => {
    const name = uniqueName('secrets');
    const inst = uniqueName('secrets');
    const client = await makeCertificate(dir, name);
    await local.certificates.create({
      type: 'client',
      name,
      certificate: Buffer.from(client.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64'),
    });
    const remote = await LxdClient.connect({
      url: `https://${address}`,
      cert: client.cert,
      key: client.key,
      serverCert,
    });
    try {
      assert.equal(remote.isTrusted, true);
      await createInstance(local, inst);
      // An exec waiting for its websockets: its operation carries their secrets.
      const answer = await remote.transport.request<Operation>({
        method: 'POST',
        path: `/1.0/instances/${inst}/exec`,
        body: { command: ['true'], environment: {}, interactive: false, 'wait-for-websocket': true },
      });
      const op = new LxdOperation(remote.transport, answer.metadata);
      const fds = op.websocketSecrets();
      assert.ok(Object.keys(fds).length >= 2, 'the exec has websocket secrets');
      assert.equal('fds' in (op.initial.metadata as object), false, 'the public answer leaves them out');
      const secrets = new Set<string>(Object.values(fds));
      // The key's body, line by line (any one line found would be a leak).
      for (const line of client.key.split('\n')) if (/^[A-Za-z0-9+/=]{40,}$/.test(line)) secrets.add(line);
      assert.ok(secrets.size >= 3);

      const errors: unknown[] = [];
      errors.push(await thrown(() => op.wait({ timeout: 1 })));
      assert.ok(errors.at(-1) instanceof TimeoutError);
      errors.push(await thrown(() => op.settled({ signal: AbortSignal.abort() })));
      assert.ok(errors.at(-1) instanceof AbortError);
      errors.push(await thrown(() => remote.instances.get(uniqueName('missing'))));
      assert.ok(errors.at(-1) instanceof NotFoundError);
      errors.push(await thrown(() => op.websocket('not-the-secret')));
      // Nobody connects: LXD gives up on the exec, a failed operation.
      errors.push(await thrown(() => op.wait()));
      assert.ok(errors.at(-1) instanceof OperationFailedError);
      const final = await op.settled();
      // Objects that hold a connection made with the client's key: an SFTP session, a download.
      const session = await remote.instances.files.sftp(inst);
      await remote.instances.files.push(inst, '/root/printed', 'x');
      const download = await remote.instances.files.pullStream(inst, '/root/printed');

      const objects: [string, unknown][] = [
        ['client', remote],
        ['transport', remote.transport],
        ['instances', remote.instances],
        ['operation', op],
        ['operation.initial', op.initial],
        ['operation.initial.metadata', op.initial.metadata],
        ['final operation', final],
        ['operation list', await local.operations.list().catch(() => [])],
        ['SFTP session', session],
        ['download', download],
      ];
      const haystacks: [string, string][] = [
        ...errors.map((e, i): [string, string] => [`error ${i}`, serialiseError(e)]),
        ...objects.map(([what, value]): [string, string] => [what, printed(value)]),
      ];
      assertNoSecrets(haystacks, secrets);
      for (const [where, text] of haystacks)
        assert.doesNotMatch(text, /PRIVATE KEY/, `${where} mentions the private key`);
      session.close();
      download.stream.destroy();
    } finally {
      remote.close();
      await removeInstance(local, inst);
      await local.certificates.delete(client.fingerprint).catch(() => {});
    }
  });

  test('a server whose certificate is not the pinned one is refused', async () => {
    const other = await makeCertificate(dir, uniqueName('notserver'));
    const client = await makeCertificate(dir, uniqueName('client'));
    await assert.rejects(
      LxdClient.connect({ url: `https://${address}`, cert: client.cert, key: client.key, serverCert: other.cert }),
      ConnectionError,
    );
  });
});

describe('TLS trust: one pinning, checked before anything is sent', () => {
  let server: CountingTlsServer;
  let dir: string;
  let otherCert: string;
  before(async () => {
    server = await startCountingTlsServer();
    dir = await mkdtemp(join(tmpdir(), 'vmpt-pin-'));
    otherCert = (await makeCertificate(dir, uniqueName('other'))).cert;
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const reset = () => {
    server.connections = 0;
    server.handshakes = 0;
    server.requests.length = 0;
    server.upgrades.length = 0;
  };

  test('a pin mismatch is a final FingerprintMismatchError, a ConnectionError with nothing sent, for every kind of call', async () => {
    const lxd = await LxdClient.connect({
      url: server.url,
      serverCert: otherCert,
      skipGetServer: true,
      retry: { attempts: 3, initial: 5, max: 10 },
    });
    const ss = new SimpleStreamsClient(server.url, { serverCert: otherCert, retry: { attempts: 3, initial: 5 } });
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ['GET', () => lxd.server.get()],
        ['POST', () => lxd.profiles.create({ name: 'vmpt-pin' })],
        ['websocket', () => lxd.transport.websocket('/1.0/events')],
        ['upgrade', () => lxd.instances.files.sftp('vmpt-pin')],
        ['SimpleStreams', () => ss.index()],
      ];
      for (const [what, call] of calls) {
        reset();
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof FingerprintMismatchError, `${what}: ${String(e)}`);
          assert.ok(e instanceof TlsVerificationError && e instanceof ConnectionError);
          assert.equal(e.sent, false);
          return true;
        });
        assert.equal(server.connections, 1, `${what}: one connection, not retried`);
        assert.deepEqual(server.requests, [], `${what}: no request reached the server`);
        assert.deepEqual(server.upgrades, [], `${what}: no upgrade reached the server`);
      }
    } finally {
      lxd.close();
      ss.close();
    }
  });

  test('the pinned certificate alone is trusted; an unpinned self-signed one is a final TlsVerificationError', async () => {
    reset();
    const pinned = await LxdClient.connect({ url: server.url, serverCert: server.certificate });
    assert.deepEqual(server.requests, ['GET /1.0']);
    pinned.close();
    const ss = new SimpleStreamsClient(server.url, { serverCert: server.certificate });
    await ss.index();
    ss.close();
    reset();
    await assert.rejects(
      LxdClient.connect({ url: server.url, retry: { attempts: 3, initial: 5 } }),
      (e: unknown) => e instanceof TlsVerificationError && !(e instanceof FingerprintMismatchError) && !e.sent,
    );
    assert.equal(server.connections, 1, 'not retried');
    assert.deepEqual(server.requests, []);
  });
});
