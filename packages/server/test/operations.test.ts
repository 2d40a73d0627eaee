import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, harness, sseFrames } from './support/harness.js';

let h: Harness;
let baseURL: string;
before(async () => {
  h = await harness();
  baseURL = await h.app.listen({ port: 0, host: '127.0.0.1' });
});
after(async () => {
  await h?.close();
});

const body = (name: string) => JSON.stringify({ os: 'debian', version: '12', name });

describe('operations, resume and idempotency', () => {
  test('an SSE client that disconnects and reconnects with Last-Event-ID misses no event', async () => {
    let release: () => void = () => {};
    h.provider.gate = new Promise<void>((r) => {
      release = r;
    });
    const abort = new AbortController();
    const res = await fetch(`${baseURL}/api/vm/install`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${h.tokens.write}`,
        'content-type': 'application/json',
        'idempotency-key': 'k-resume',
      },
      body: body('resume-one'),
      signal: abort.signal,
    });
    const opId = res.headers.get('x-operation-id');
    assert.ok(opId);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!/\nid: \d+\ndata: .*\n\n/.test(`\n${text}`)) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    const seen = sseFrames(text)
      .filter((f) => f.id)
      .map((f) => Number(f.id));
    const lastSeen = Math.max(...seen);
    // The operation goes on without its client.
    release();
    h.provider.gate = undefined;
    const again = await h.app.inject({
      method: 'GET',
      url: `/v1/operations/${opId}/events`,
      headers: { ...h.auth('read'), 'last-event-id': String(lastSeen) },
    });
    const resumed = sseFrames(again.body).filter((f) => f.event === 'stage');
    assert.equal(Number(resumed[0]?.id), lastSeen + 1, 'resumes right after the last id seen');
    const journal = await h.store.operations.events(opId);
    assert.deepEqual(
      [...seen, ...resumed.map((f) => Number(f.id))],
      journal.map((e) => e.seq),
      'seen + resumed = the whole journal',
    );
    const end = sseFrames(again.body).find((f) => f.event === 'end');
    assert.equal(JSON.parse(end?.data ?? '{}').status, 'succeeded');
  });

  test('the same Idempotency-Key and body give the same operation (resumable); another body is 409', async () => {
    const headers = {
      ...h.auth(),
      'content-type': 'application/json',
      'idempotency-key': 'k-resume',
      'last-event-id': '2',
    };
    const first = (await h.plane.listOperations({ limit: 100 })).filter((o) => o.kind === 'install');
    assert.equal(first.length, 1);
    const same = await fetch(`${baseURL}/api/vm/install`, { method: 'POST', headers, body: body('resume-one') });
    const sameBody = await same.text();
    assert.equal(same.status, 200, sameBody);
    assert.equal(same.headers.get('x-operation-id'), first[0]?.id, 'the same operation');
    const ops = await h.plane.listOperations({ limit: 100 });
    assert.equal(ops.filter((o) => o.kind === 'install').length, 1, 'no second install');
    const frames = sseFrames(sameBody).filter((f) => f.id);
    assert.equal(frames[0]?.id, '3', 'resumed after Last-Event-ID');
    assert.deepEqual(sseFrames(sameBody).at(-1), { event: 'close', data: '{}' });
    const other = await fetch(`${baseURL}/api/vm/install`, { method: 'POST', headers, body: body('resume-two') });
    assert.equal(other.status, 409);
    assert.equal(((await other.json()) as { code: string }).code, 'idempotency_conflict');
    assert.equal(other.headers.get('x-should-retry'), 'false');
    assert.equal((await h.plane.listOperations({ limit: 100 })).filter((o) => o.kind === 'install').length, 1);
  });

  test('a failed stage ends the stream with an error event and leaves no instance or allocation', async () => {
    h.provider.failAt = 'VM initialization > waiting for ready';
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/vm/install',
      headers: { ...h.auth(), 'content-type': 'application/json' },
      payload: body('fail-one'),
    });
    h.provider.failAt = undefined;
    const frames = sseFrames(res.body).filter((f) => f.data);
    assert.deepEqual(frames.at(-1), { event: 'close', data: '{}' });
    const events = frames.slice(0, -1).map((f) => JSON.parse(f.data ?? '{}'));
    assert.equal(events.at(-1).status, 'error');
    assert.ok(!(await h.plane.listInstances()).some((i) => i.name === 'fail-one'));
    assert.ok(!h.provider.guests.has('fail-one'), 'the guest was undone');
    const opId = String(res.headers['x-operation-id']);
    assert.deepEqual(await h.store.allocations.list({ owner: opId }), []);
    const op = await h.app.inject({ url: `/v1/operations/${opId}`, headers: h.auth('read') });
    assert.equal(op.json().status, 'failed');
  });

  test('/v1/operations lists, 404s an unknown id, refuses a traversal id, cancels', async () => {
    const list = await h.app.inject({ url: '/v1/operations?limit=5', headers: h.auth('read') });
    assert.equal(list.statusCode, 200);
    assert.ok(list.json().length >= 1);
    assert.equal((await h.app.inject({ url: '/v1/operations/nope', headers: h.auth('read') })).statusCode, 404);
    assert.equal(
      (await h.app.inject({ url: '/v1/operations/..%2F..%2Fetc', headers: h.auth('read') })).statusCode,
      400,
    );
    assert.equal((await h.app.inject({ url: '/instances/..%2Fx', headers: h.auth('read') })).statusCode, 400);
    const bad = await h.app.inject({ url: '/v1/operations?limit=abc', headers: h.auth('read') });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /querystring\.limit/);
  });

  test('/v1/providers, /v1/nodes, /healthz, /metrics, /openapi.json', async () => {
    const providers = (await h.app.inject({ url: '/v1/providers', headers: h.auth('read') })).json();
    assert.equal(providers[0].name, 'fake');
    assert.equal(providers[0].reachable, true);
    const nodes = (await h.app.inject({ url: '/v1/nodes', headers: h.auth('read') })).json();
    assert.equal(nodes[0].name, 'fake-node');
    assert.equal((await h.app.inject({ url: '/healthz' })).statusCode, 200);
    const metrics = (await h.app.inject({ url: '/metrics', headers: h.auth('read') })).body;
    assert.match(metrics, /vmplane_http_requests_total\{method="GET",route="\/v1\/providers",status="200"\} 1/);
    assert.match(metrics, /vmplane_operations_total\{kind="install",status="failed"\} 1/);
    assert.match(metrics, /vmplane_instances\{state="Running"\}/);
    const openapi = (await h.app.inject({ url: '/openapi.json' })).json();
    assert.ok(openapi.paths['/instances'].post, 'create is documented');
    assert.ok(openapi.paths['/api/vm/install'].post);
    assert.ok(!openapi.paths['/instances/{id}/exec'], 'WebSockets are outside the document, as in hypeman');
  });
});
