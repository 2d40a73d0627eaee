import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { localLxdSocket } from '../src/config.js';
import { assertEveryStage, install, PREFIX, type Running, serve, until } from './support/e2e.js';

const run = promisify(execFile);
const lxc = (...args: string[]) => run('lxc', args, { timeout: 120_000 });

const ALIAS = process.env.VMPLANE_IMAGE_ALIAS ?? 'vmplane-busybox';
const socket = localLxdSocket();
const skip = socket ? false : 'no local LXD daemon (no unix socket found)';

// go-pve-qemu's body names the image `<os>/<version>`; on LXD that is a local alias, so the test
// gives the busybox image one of its own: `<prefix>/busybox`.
const OS = PREFIX;
const VERSION = 'busybox';
const made: string[] = [];
let aliasMade = false;
let r: Running | undefined;

before(async () => {
  if (skip) return;
  const target = JSON.parse((await lxc('query', `/1.0/images/aliases/${ALIAS}`)).stdout) as { target: string };
  await lxc('image', 'alias', 'create', `${OS}/${VERSION}`, target.target);
  aliasMade = true;
  r = await serve(async (dir) => {
    const file = join(dir, 'config.json');
    await writeFile(
      file,
      JSON.stringify({ defaultProvider: 'lxd', providers: { lxd: { type: 'lxd', socket } }, reconcileIntervalMs: 500 }),
    );
    return file;
  });
});
after(async () => {
  await r?.close();
  for (const name of made) await lxc('delete', '--force', name).catch(() => {});
  if (aliasMade) await lxc('image', 'alias', 'delete', `${OS}/${VERSION}`).catch(() => {});
});

/** hypeman's exec WebSocket: output (binary frames) and the last text frame's exit code. */
function exec(url: string, token: string, id: string, command: string[]): Promise<{ output: string; exit: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/instances/${id}/exec`, {
      headers: { authorization: `Bearer ${token}` },
    });
    let output = '';
    const texts: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('exec did not end within 30 s'));
    }, 30_000);
    ws.on('open', () => ws.send(JSON.stringify({ command, tty: false })));
    ws.on('message', (data, binary) => {
      if (binary) output += data.toString();
      else texts.push(data.toString());
    });
    ws.on('close', () => {
      clearTimeout(timer);
      const last = texts.at(-1);
      resolve({ output, exit: last ? JSON.parse(last) : undefined });
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

describe('LXD install end to end (startServer over HTTP, the real daemon)', { skip }, () => {
  test('an install streams every stage in order and ends in a guest that answers exec', async () => {
    assert.ok(r);
    const name = `${PREFIX}-lxd1`;
    made.push(name);
    const res = await install(r, { os: OS, version: VERSION, name, provider: 'lxd' });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.closed, 'ends with event: close');
    const last = res.events.at(-1);
    assert.equal(last?.status, 'success', res.text);
    assert.equal(typeof last?.vm_id, 'number');
    assertEveryStage(res.events);

    const inst = (await r.server.plane.listInstances()).find((i) => i.name === name);
    assert.equal(inst?.state, 'Running');
    assert.ok(inst);
    const out = await exec(r.server.url, r.token, inst.id, ['echo', 'hello-from-lxd']);
    assert.equal(out.output, 'hello-from-lxd\n');
    assert.deepEqual(out.exit, { exitCode: 0 });
  });

  test("hypeman's snapshots and fork: a stopped snapshot restored undoes a change; a fork is its own instance", async () => {
    assert.ok(r);
    const live = r;
    const name = `${PREFIX}-lxd3`;
    const forkName = `${PREFIX}-lxd3-fork`;
    made.push(name, forkName);
    const res = await install(r, { os: OS, version: VERSION, name, provider: 'lxd' });
    assert.equal(res.events.at(-1)?.status, 'success', res.text);
    const inst = (await r.server.plane.listInstances()).find((i) => i.name === name);
    assert.ok(inst);
    const post = (path: string, body: unknown) =>
      fetch(`${live.server.url}${path}`, {
        method: 'POST',
        headers: { ...live.auth(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    await exec(live.server.url, live.token, inst.id, ['sh', '-c', 'echo before > /root/mark']);

    // A Stopped snapshot of a running source is hypeman's 409 `conflict`, and changes nothing.
    const refused = await post(`/instances/${inst.id}/snapshots`, { kind: 'Stopped', name: 's1' });
    assert.equal(refused.status, 409);
    assert.equal(((await refused.json()) as { code: string }).code, 'conflict');

    assert.equal((await post(`/instances/${inst.id}/stop`, {})).status, 200);
    const snap = await post(`/instances/${inst.id}/snapshots`, { kind: 'Stopped', name: 's1' });
    assert.equal(snap.status, 201, await snap.clone().text());
    const body = (await snap.json()) as { id: string; kind: string; source_instance_id: string };
    assert.deepEqual([body.id, body.kind, body.source_instance_id], ['s1', 'Stopped', inst.id]);
    assert.match((await lxc('info', name)).stdout, /\bs1\b/, 'LXD holds the snapshot');

    // Change the guest, restore, and the change is gone.
    assert.equal((await post(`/instances/${inst.id}/start`, {})).status, 200);
    await until(async () => (await live.server.plane.getInstance(inst.id)).state === 'Running', 'Running again');
    await exec(live.server.url, live.token, inst.id, ['sh', '-c', 'echo after > /root/mark']);
    assert.equal((await post(`/instances/${inst.id}/stop`, {})).status, 200);
    const restored = await post(`/instances/${inst.id}/snapshots/s1/restore`, {});
    assert.equal(restored.status, 200, await restored.clone().text());
    assert.equal((await post(`/instances/${inst.id}/start`, {})).status, 200);
    await until(
      async () => (await live.server.plane.getInstance(inst.id)).state === 'Running',
      'Running after restore',
    );
    const mark = await exec(live.server.url, live.token, inst.id, ['cat', '/root/mark']);
    assert.equal(mark.output, 'before\n');

    // Fork from Running needs from_running; with it, the copy is a new instance on the backend.
    const noFlag = await post(`/instances/${inst.id}/fork`, { name: forkName });
    assert.equal(noFlag.status, 409);
    const fork = await post(`/instances/${inst.id}/fork`, {
      name: forkName,
      from_running: true,
      target_state: 'Running',
    });
    assert.equal(fork.status, 201, await fork.clone().text());
    const copy = (await fork.json()) as { id: string; name: string; state: string };
    assert.notEqual(copy.id, inst.id);
    assert.equal(copy.name, forkName);
    assert.equal(copy.state, 'Running');
    const there = await exec(live.server.url, live.token, copy.id, ['cat', '/root/mark']);
    assert.equal(there.output, 'before\n');
    await lxc('info', forkName);
  });

  test('a guest stopped, then deleted, with the lxc client shows so through GET /instances/{id}', async () => {
    assert.ok(r);
    const live = r;
    const name = `${PREFIX}-lxd2`;
    made.push(name);
    const res = await install(r, { os: OS, version: VERSION, name, provider: 'lxd' });
    assert.equal(res.events.at(-1)?.status, 'success', res.text);
    const inst = (await r.server.plane.listInstances()).find((i) => i.name === name);
    assert.ok(inst);
    const get = () => fetch(`${live.server.url}/instances/${inst.id}`, { headers: live.auth() });
    assert.equal(((await (await get()).json()) as { state: string }).state, 'Running');

    await lxc('stop', '--force', name);
    let state = '';
    await until(async () => {
      state = ((await (await get()).json()) as { state: string }).state;
      return state === 'Stopped';
    }, 'the instance shows Stopped');
    assert.equal(state, 'Stopped');

    await lxc('delete', '--force', name);
    let status = 0;
    let body: { state?: string } = {};
    await until(async () => {
      const got = await get();
      status = got.status;
      body = (await got.json()) as { state?: string };
      return status === 404 || body.state === 'Unknown';
    }, 'the instance shows it is gone');
    assert.ok(status === 404 || body.state === 'Unknown', `${status} ${JSON.stringify(body)}`);
  });
});
