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
