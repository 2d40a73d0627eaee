import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggedIn, Raw, sim } from './helpers.js';

const guests = [{ vmid: 100, node: 'pve1', status: 'stopped' as const }];

test('failNext answers the given status N times, by concrete path or template, then recovers', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = new Raw(s).useToken();
  s.faults.failNext('/nodes', { times: 2, status: 503 });
  assert.equal((await api.get('/nodes')).status, 503);
  assert.equal((await api.get('/nodes')).status, 503);
  assert.equal((await api.get('/nodes')).status, 200);
  assert.deepEqual(
    s.faults.injected.map((f) => [f.kind, f.status, f.path]),
    [
      ['fail', 503, '/nodes'],
      ['fail', 503, '/nodes'],
    ],
  );
  s.faults.failNext('/nodes/{node}/qemu/{vmid}/status/current', { status: 500, message: 'boom' });
  const a = await api.get('/nodes/pve1/qemu/100/status/current');
  assert.equal(a.status, 500);
  assert.equal(a.reason, 'boom');
  s.faults.failNext('/nodes/*/qemu/**', { method: 'POST' });
  assert.equal((await api.get('/nodes/pve1/qemu/100/config')).status, 200, 'only POSTs match');
  assert.equal((await api.post('/nodes/pve1/qemu/100/status/start')).status, 503);
});

test('failRate is seeded and deterministic', async () => {
  const run = async () => {
    const s = await sim({ nodes: 1, guests, seed: 42 });
    const api = new Raw(s).useToken();
    s.faults.failRate('/version', 0.5);
    const out: number[] = [];
    for (let i = 0; i < 20; i++) out.push((await api.get('/version')).status);
    return out;
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a, b);
  assert.ok(a.includes(503) && a.includes(200));
});

test('dropNext destroys the connection without an answer', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = new Raw(s).useToken();
  s.faults.dropNext('/version');
  await assert.rejects(api.get('/version'));
  assert.equal((await api.get('/version')).status, 200);
  assert.deepEqual(s.faults.injected, [{ kind: 'drop', method: 'GET', path: '/version' }]);
});

test('latency is injected and recorded; a failing task ends with the injected exitstatus', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  s.faults.latency = 30;
  assert.equal((await api.get('/version')).status, 200);
  assert.deepEqual(s.faults.injected, [{ kind: 'latency', method: 'GET', path: '/version', ms: 30 }]);
  s.faults.latency = 0;
  await api.get('/version');
  assert.equal(s.faults.injected.length, 1, 'no latency recorded once it is off');
  s.faults.failNextTask('qmstart', 'start failed: no space left');
  const t = await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/start')).body.data));
  assert.equal(t.exitstatus, 'start failed: no space left');
  const cur = await api.get('/nodes/pve1/qemu/100/status/current');
  assert.equal((cur.body.data as { status: string }).status, 'stopped');
  const next = await api.wait(String((await api.post('/nodes/pve1/qemu/100/status/start')).body.data));
  assert.equal(next.exitstatus, 'OK');
});

test('an offline node answers 595 and shows offline; requests are counted per route', async () => {
  const s = await sim({ nodes: 2, guests });
  const api = new Raw(s).useToken();
  s.faults.nodeOffline('pve1');
  const a = await api.get('/nodes/pve1/status');
  assert.equal(a.status, 595);
  assert.equal(a.reason, 'No route to host');
  s.faults.nodeOnline('pve1');
  assert.equal((await api.get('/nodes/pve1/status')).status, 200);
  assert.equal(s.requests.count('GET', '/nodes/{node}/status'), 2);
  assert.equal(s.requests.total, 2);
});

test('the request log records content type and parameter names, never values', async () => {
  const s = await sim({ nodes: 1, guests });
  const api = await loggedIn(s);
  const secret = s.credentials.password;
  await api.call('PUT', '/nodes/pve1/qemu/100/config', { description: 'form body', cores: 2 });
  await api.call('PUT', '/nodes/pve1/qemu/100/config', { description: 'json body' }, true);
  await api.get('/nodes/pve1/qemu/100/config', { current: 1 });
  const login = s.requests.entries.find((e) => e.template === '/access/ticket');
  assert.equal(login?.contentType, 'application/x-www-form-urlencoded');
  assert.deepEqual(login?.params, ['password', 'username']);
  const puts = s.requests.entries.filter((e) => e.method === 'PUT');
  assert.deepEqual(
    puts.map((e) => [e.contentType, e.params]),
    [
      ['application/x-www-form-urlencoded', ['cores', 'description']],
      ['application/json', ['description']],
    ],
  );
  const get = s.requests.entries.at(-1);
  assert.equal(get?.contentType, undefined);
  assert.deepEqual(get?.params, ['current']);
  assert.ok(typeof get?.at === 'number' && get.at >= (login?.at ?? Infinity), 'entries carry the simulator time');
  const logged = JSON.stringify(s.requests.entries);
  for (const value of [secret, 'form body', 'json body']) assert.ok(!logged.includes(value), `${value} not logged`);
  assert.deepEqual(s.violations, []);
});

test("guest command faults apply to the agent's exec too: an exit status, or a command that never exits", async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'running' }] });
  const api = new Raw(s).useToken();
  s.faults.guest(100, {
    commands: [
      { match: /^systemctl is-system-running/, exitcode: 1, stdout: 'degraded\n' },
      { match: 'cloud-init', hang: true },
    ],
  });
  const run = async (command: string) => {
    // A JSON body carries the argument vector as an array, as clients send it.
    const body = { command: command.split(' ') } as unknown as Record<string, string>;
    const started = await api.call('POST', '/nodes/pve1/qemu/100/agent/exec', body, true);
    const pid = (started.body.data as { pid: number }).pid;
    return (await api.get('/nodes/pve1/qemu/100/agent/exec-status', { pid })).body.data;
  };
  assert.deepEqual(await run('systemctl is-system-running --wait'), {
    exited: 1,
    exitcode: 1,
    'out-data': 'degraded\n',
  });
  assert.deepEqual(await run('cloud-init status --wait'), { exited: 0 });
  s.clock.advance(24 * 3600_000);
  assert.deepEqual(await run('cloud-init status --wait'), { exited: 0 }, 'still running a day later');
  s.faults.guest(100, undefined);
  assert.deepEqual(await run('cloud-init status --wait'), { exited: 1, exitcode: 0, 'out-data': 'status: done\n' });
  assert.deepEqual(s.violations, []);
});
