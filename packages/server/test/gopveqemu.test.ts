import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { INSTALL_STAGES } from '@vmplane/core';
import { clampInstall } from '../src/index.js';
import { type Harness, harness, sseFrames } from './support/harness.js';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => {
  await h?.close();
});

describe("go-pve-qemu's /api", () => {
  test('GET /api/health answers ok as text/plain without a token', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/health' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'ok');
    assert.match(String(res.headers['content-type']), /^text\/plain/);
  });

  test('install streams every stage in order with ids, vm_id and ip, then event: close', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/vm/install',
      headers: h.auth(),
      payload: { os: 'debian', version: '12', name: 'gpq-one', passwd: 'hunter2-secret' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    const frames = sseFrames(res.body).filter((f) => f.comment === undefined);
    const last = frames.at(-1);
    assert.deepEqual(last, { event: 'close', data: '{}' });
    const events = frames.slice(0, -1).map((f) => ({ id: Number(f.id), ...JSON.parse(f.data ?? '{}') }));
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_, i) => i + 1),
      'ids count from 1',
    );
    assert.deepEqual(Object.keys(events[0]).slice(1, 4), ['step', 'status', 'message']);
    assert.equal(events[0].step, '');
    const stages = [...new Set(events.map((e) => e.step).filter((s: string) => s !== ''))];
    assert.deepEqual(
      stages.filter((s) => (INSTALL_STAGES as readonly string[]).includes(s)),
      INSTALL_STAGES.filter((s) => stages.includes(s)),
      'stages in go-pve-qemu order',
    );
    assert.ok(stages.includes('VM creation > creating VM'));
    assert.ok(stages.includes('VM initialization > finalizing'));
    const final = events.at(-1);
    assert.equal(final.status, 'success');
    assert.equal(typeof final.vm_id, 'number');
    assert.ok(!res.body.includes('hunter2-secret'), 'the password is not streamed');
  });

  test('a bad install body is 400 JSON naming the field, and nothing is made', async () => {
    const before = (await h.plane.listInstances()).length;
    for (const payload of [
      { os: 'debian', version: '12', cpu: 'two' },
      { os: 'debian', version: '12', extra: 1 },
      { os: 'debian' },
      { os: 'debian', version: '12', name: 'a"b\nc' },
      { os: '../etc', version: '12' },
      { os: 'debian', version: '12', disk: '20GB' },
    ]) {
      const res = await h.app.inject({ method: 'POST', url: '/api/vm/install', headers: h.auth(), payload });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      const body = res.json();
      assert.equal(body.success, false);
      assert.equal(body.code, 'invalid_request');
      assert.match(body.message, /^please check your input: body/);
    }
    const extra = await h.app.inject({
      method: 'POST',
      url: '/api/vm/install',
      headers: h.auth(),
      payload: { os: 'debian', version: '12', extra: 1 },
    });
    assert.match(extra.json().message, /body\.extra: unknown field/);
    assert.equal((await h.plane.listInstances()).length, before);
  });

  test('a huge body is 413 and nothing is made', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/vm/install',
      headers: { ...h.auth(), 'content-type': 'application/json' },
      payload: JSON.stringify({ os: 'debian', version: '12', pubkey: 'x'.repeat(400_000) }),
    });
    assert.equal(res.statusCode, 413);
  });

  test('list serves both the code keys and the documented keys', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/vm/list', headers: h.auth('read') });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.success, true);
    for (const k of ['vms', 'nodes', 'cluster', 'list', 'data', 'count']) assert.ok(k in body, k);
    const vm = body.vms.find((v: { name: string }) => v.name === 'gpq-one');
    assert.ok(vm, JSON.stringify(body.vms));
    assert.deepEqual(Object.keys(vm), [
      'vmid',
      'name',
      'os',
      'running',
      'node',
      'cpu',
      'disk',
      'memory',
      'memory_used',
    ]);
    assert.equal(vm.running, true);
    assert.equal(body.nodes[0].node, 'fake-node');
  });

  test('status, stop, start (SSE), set/cpu, destroy by VMID', async () => {
    const list = (await h.app.inject({ method: 'GET', url: '/api/vm/list', headers: h.auth('read') })).json();
    const vmid = list.vms.find((v: { name: string }) => v.name === 'gpq-one').vmid;
    const status = await h.app.inject({ method: 'GET', url: `/api/vm/${vmid}/status`, headers: h.auth('read') });
    assert.equal(status.body, 'running');
    const bad = await h.app.inject({ method: 'GET', url: '/api/vm/abc/status', headers: h.auth('read') });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(bad.json(), { error: 'invalid VM ID' });

    const setWhileRunning = await h.app.inject({
      method: 'POST',
      url: `/api/vm/${vmid}/set/cpu`,
      headers: h.auth(),
      payload: { cpu: 4 },
    });
    assert.equal(setWhileRunning.body, 'VM is running');

    const stop = await h.app.inject({ method: 'POST', url: `/api/vm/${vmid}/stop`, headers: h.auth() });
    assert.equal(stop.statusCode, 200, stop.body);
    assert.equal(stop.body, 'ok');
    assert.equal(
      (await h.app.inject({ method: 'GET', url: `/api/vm/${vmid}/status`, headers: h.auth('read') })).body,
      'stopped',
    );
    const again = await h.app.inject({ method: 'POST', url: `/api/vm/${vmid}/stop`, headers: h.auth() });
    assert.equal(again.body, 'VM is not running');

    const cpu = await h.app.inject({
      method: 'POST',
      url: `/api/vm/${vmid}/set/cpu`,
      headers: h.auth(),
      payload: { cpu: 40 },
    });
    assert.equal(cpu.statusCode, 400);
    assert.match(cpu.body, /^invalid request body: /);
    const cpuOk = await h.app.inject({
      method: 'POST',
      url: `/api/vm/${vmid}/set/cpu`,
      headers: h.auth(),
      payload: { cpu: 4 },
    });
    assert.equal(cpuOk.body, 'ok', cpuOk.body);

    const start = await h.app.inject({ method: 'POST', url: `/api/vm/${vmid}/start`, headers: h.auth() });
    const frames = sseFrames(start.body).filter((f) => f.comment === undefined);
    assert.deepEqual(frames.at(-1), { event: 'close', data: '{}' });
    assert.ok(frames.length > 1);

    const destroy = await h.app.inject({ method: 'POST', url: `/api/vm/${vmid}/destroy`, headers: h.auth() });
    assert.equal(destroy.body, 'ok', destroy.body);
    const gone = await h.app.inject({ method: 'GET', url: `/api/vm/${vmid}/status`, headers: h.auth('read') });
    assert.equal(gone.statusCode, 404);
  });

  test('clamping: defaults 2/2048/16G, bounds and VM_MAX_*', () => {
    assert.deepEqual(clampInstall({ os: 'debian', version: '12' }), { cpu: 2, ram: 2048, diskGiB: 16 });
    assert.deepEqual(clampInstall({ os: 'd', version: '1', cpu: -3, ram: 100, disk: '8G' }), {
      cpu: 1,
      ram: 512,
      diskGiB: 16,
    });
    assert.deepEqual(clampInstall({ os: 'd', version: '1', cpu: 99, ram: 99_999, disk: '500' }), {
      cpu: 32,
      ram: 99_999,
      diskGiB: 500,
    });
    assert.deepEqual(
      clampInstall(
        { os: 'd', version: '1', cpu: 16, ram: 8192, disk: '100G' },
        { VM_MAX_CPU: 4, VM_MAX_RAM: 4096, VM_MAX_DISK: 32 },
      ),
      { cpu: 4, ram: 4096, diskGiB: 32 },
    );
  });
});
