import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, harness, sseFrames } from './support/harness.js';

const concrete = (url: string) => url.replace(/:snapshotId/g, 'snap1').replace(/:id/g, '100');

describe('auth on every route', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h?.close();
  });

  test('the route table is complete enough to mean something', () => {
    const urls = h.app.vmplaneRoutes.map((r) => `${r.method} ${r.url}`);
    for (const must of ['POST /api/vm/install', 'GET /instances/:id/exec', 'GET /v1/events', 'GET /metrics'])
      assert.ok(urls.includes(must), must);
    for (const r of h.app.vmplaneRoutes) assert.ok(r.access, `${r.method} ${r.url} declares its access`);
  });

  test('no token, a wrong token, a malformed header: 401 on every route that needs one', async () => {
    for (const r of h.app.vmplaneRoutes) {
      if (r.access?.scope === 'none') continue;
      for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: 'Basic abc' }]) {
        const res = await h.app.inject({ method: r.method as 'GET', url: concrete(r.url), headers });
        assert.equal(res.statusCode, 401, `${r.method} ${r.url} ${JSON.stringify(headers)}: ${res.body}`);
        if (r.access?.flavour === 'hypeman') assert.equal(res.json().code, 'unauthorized');
      }
    }
  });

  test('a read token on a write route: 403 on every write route', async () => {
    for (const r of h.app.vmplaneRoutes.filter((x) => x.access?.scope === 'write' || x.access?.scope === 'admin')) {
      const res = await h.app.inject({ method: r.method as 'GET', url: concrete(r.url), headers: h.auth('read') });
      assert.equal(res.statusCode, 403, `${r.method} ${r.url}: ${res.body}`);
    }
  });

  test('a revoked token stops working at once', async () => {
    const { token, record } = await h.store.tokens.create({ scope: 'read', name: 'short-lived' });
    const ok = await h.app.inject({ url: '/instances', headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.statusCode, 200);
    await h.store.tokens.revoke(record.id);
    const refused = await h.app.inject({ url: '/instances', headers: { authorization: `Bearer ${token}` } });
    assert.equal(refused.statusCode, 401);
  });

  test('unknown paths with a token are 404 in the hypeman body', async () => {
    const res = await h.app.inject({ url: '/nope', headers: h.auth('read') });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'not_found');
  });
});

describe('IP allowlist', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ allowIps: ['10.9.8.7', '192.0.2.0/24'] });
  });
  after(async () => {
    await h?.close();
  });

  test('a disallowed address is refused on every route, X-Forwarded-For notwithstanding', async () => {
    for (const r of h.app.vmplaneRoutes) {
      const res = await h.app.inject({
        method: r.method as 'GET',
        url: concrete(r.url),
        remoteAddress: '127.0.0.1',
        headers: { ...h.auth('admin'), 'x-forwarded-for': '10.9.8.7', 'x-real-ip': '10.9.8.7' },
      });
      assert.equal(res.statusCode, 403, `${r.method} ${r.url}: ${res.body}`);
    }
  });

  test('an allowed address (exact or in a CIDR) gets through', async () => {
    for (const ip of ['10.9.8.7', '192.0.2.200']) {
      const res = await h.app.inject({ url: '/instances', remoteAddress: ip, headers: h.auth('read') });
      assert.equal(res.statusCode, 200, ip);
    }
  });

  test('X-Forwarded-For counts only from a trusted proxy', async () => {
    const t = await harness({ allowIps: ['10.9.8.7'], trustedProxies: ['127.0.0.1'] });
    try {
      const res = await t.app.inject({
        url: '/instances',
        remoteAddress: '127.0.0.1',
        headers: { ...t.auth('read'), 'x-forwarded-for': '10.9.8.7' },
      });
      assert.equal(res.statusCode, 200);
      const spoofed = await t.app.inject({
        url: '/instances',
        remoteAddress: '127.0.0.1',
        headers: { ...t.auth('read'), 'x-forwarded-for': '10.9.8.7, 203.0.113.5' },
      });
      assert.equal(spoofed.statusCode, 403, 'the right-most untrusted hop decides');
    } finally {
      await t.close();
    }
  });
});

describe('VMPLANE_API_AUTH=allowlist', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ apiAuth: 'allowlist' });
  });
  after(async () => {
    await h?.close();
  });

  test('the /api routes work without a token; everything else still needs one', async () => {
    assert.equal((await h.app.inject({ url: '/api/vm/list' })).statusCode, 200);
    assert.equal((await h.app.inject({ url: '/instances' })).statusCode, 401);
    assert.equal(
      (await h.app.inject({ url: '/api/vm/list', headers: { authorization: 'Bearer bad' } })).statusCode,
      401,
    );
  });
});

describe('secrets', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h?.close();
  });

  test('no password or token reaches logs, events, the journal, errors or /metrics', async () => {
    const secret = 'Sup3r-S3cret-pw';
    h.provider.failAt = 'VM initialization > SSH initialization';
    const install = await h.app.inject({
      method: 'POST',
      url: '/api/vm/install',
      headers: h.auth(),
      payload: { os: 'debian', version: '12', name: 'sec-one', passwd: secret },
    });
    h.provider.failAt = undefined;
    const frames = sseFrames(install.body).filter((f) => f.data && f.data !== '{}');
    assert.ok(
      frames.some((f) => JSON.parse(f.data ?? '{}').status === 'error'),
      'the failure is an error event',
    );
    const bad = await h.app.inject({
      method: 'POST',
      url: '/instances',
      headers: h.auth(),
      payload: { name: 'x', image: 'i', password: secret },
    });
    const ops = (await h.app.inject({ url: '/v1/operations', headers: h.auth('read') })).body;
    const journal: string[] = [];
    for (const op of JSON.parse(ops) as Array<{ id: string }>)
      journal.push((await h.app.inject({ url: `/v1/operations/${op.id}/events`, headers: h.auth('read') })).body);
    const metrics = (await h.app.inject({ url: '/metrics', headers: h.auth('read') })).body;
    const everything = [install.body, bad.body, ops, ...journal, metrics, h.logs.join('\n')].join('\n');
    for (const s of [secret, h.tokens.read, h.tokens.write, h.tokens.admin])
      assert.ok(!everything.includes(s), `a secret leaked: ${s.slice(0, 4)}…`);
    assert.ok(h.logs.length > 0, 'the logger wrote something to scan');
  });
});
