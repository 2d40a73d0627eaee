import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConnectionError, ForbiddenError, LxdClient, NotFoundError } from '@vmplane/lxd';
import { makeCertificate } from './support/certs.js';
import { connect, uniqueName } from './support/lxd.js';

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

  test('a server whose certificate is not the pinned one is refused', async () => {
    const other = await makeCertificate(dir, uniqueName('notserver'));
    const client = await makeCertificate(dir, uniqueName('client'));
    await assert.rejects(
      LxdClient.connect({ url: `https://${address}`, cert: client.cert, key: client.key, serverCert: other.cert }),
      ConnectionError,
    );
  });
});
