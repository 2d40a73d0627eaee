import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Hypeman, { AuthenticationError, ConflictError, NotFoundError } from '@onkernel/hypeman';
import { cpFromInstance, cpToInstance } from '@onkernel/hypeman/lib/cp';
import WebSocket from 'ws';
import { type Harness, harness } from './support/harness.js';

let h: Harness;
let baseURL: string;
let hm: Hypeman;
let dir: string;

before(async () => {
  h = await harness();
  baseURL = await h.app.listen({ port: 0, host: '127.0.0.1' });
  hm = new Hypeman({ apiKey: h.tokens.write, baseURL, maxRetries: 0 });
  dir = await mkdtemp(join(tmpdir(), 'vmplane-hm-'));
});
after(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** One exec session: the first frame, then `send` frames; resolves with the output and the exit frame. */
function exec(
  id: string,
  first: Record<string, unknown>,
  onOpen?: (ws: WebSocket) => void,
): Promise<{ output: string; exit: unknown; texts: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${baseURL.replace('http', 'ws')}/instances/${id}/exec`, {
      headers: { authorization: `Bearer ${h.tokens.write}` },
    });
    let output = '';
    const texts: string[] = [];
    ws.on('open', () => {
      ws.send(JSON.stringify(first));
      onOpen?.(ws);
    });
    ws.on('message', (data, binary) => {
      if (binary) output += data.toString();
      else texts.push(data.toString());
    });
    ws.on('close', () => {
      const last = texts.at(-1);
      resolve({ output, exit: last ? JSON.parse(last) : undefined, texts });
    });
    ws.on('error', reject);
  });
}

describe("hypeman's API through @onkernel/hypeman", () => {
  let id: string;

  test('health, create, get by id and name, list with state and tag filters', async () => {
    assert.deepEqual(await hm.health.check(), { status: 'ok' });
    const inst = await hm.instances.create({
      name: 'hm-one',
      image: 'vmplane-busybox',
      vcpus: 1,
      size: '512MB',
      tags: { suite: 'e2e' },
    });
    id = inst.id;
    assert.equal(inst.name, 'hm-one');
    assert.ok(['Created', 'Initializing', 'Running'].includes(inst.state));
    const waited = await hm.instances.wait(id, { state: 'Running', timeout: '30s' });
    assert.equal(waited.state, 'Running');
    assert.equal((await hm.instances.get('hm-one')).id, id);
    assert.equal((await hm.instances.get(id.slice(0, 6))).id, id, 'a unique id prefix resolves');
    const listed = await hm.instances.list({ state: 'Running', tags: { suite: 'e2e' } });
    assert.deepEqual(
      listed.map((i) => i.id),
      [id],
    );
    assert.deepEqual(await hm.instances.list({ tags: { suite: 'other' } }), []);
  });

  test('logs (app and hypeman sources), stat, stats', async () => {
    const lines: string[] = [];
    for await (const line of await hm.instances.logs(id, { tail: 10, source: 'app' })) lines.push(line);
    assert.deepEqual(lines, ['boot line 1', 'boot line "2"']);
    const journal: string[] = [];
    for await (const line of await hm.instances.logs(id, { tail: 100, source: 'hypeman' })) journal.push(line);
    assert.ok(
      journal.some((l) => l.includes('VM creation > creating VM')),
      journal.join('\n'),
    );
    const missing = await hm.instances.stat(id, { path: '/nope' });
    assert.equal(missing.exists, false);
    const stats = await hm.instances.stats(id);
    assert.equal(stats.instance_id, id);
    assert.equal(stats.allocated_vcpus, 2);
  });

  test('cp helpers copy a file in and out', async () => {
    const src = join(dir, 'hello.txt');
    await writeFile(src, 'hello from the host\n');
    await cpToInstance(
      { baseURL, apiKey: h.tokens.write },
      { instanceId: id, srcPath: src, dstPath: '/tmp/hello.txt' },
    );
    const info = await hm.instances.stat(id, { path: '/tmp/hello.txt' });
    assert.equal(info.exists, true);
    assert.equal(info.size, 20);
    const out = join(dir, 'out');
    await cpFromInstance(
      { baseURL, apiKey: h.tokens.write },
      { instanceId: id, srcPath: '/tmp/hello.txt', dstPath: out },
    );
    assert.equal(await readFile(join(out, 'hello.txt'), 'utf8'), 'hello from the host\n');
  });

  test('exec over the WebSocket returns output and the exit code', async () => {
    const r = await exec(id, { command: ['fail', '3'], tty: false });
    assert.match(r.output, /out\n/);
    assert.match(r.output, /oops\n/);
    assert.deepEqual(r.exit, { exitCode: 3 });
  });

  test('a TTY session resizes and is ended by a signal (Ctrl-C)', async () => {
    const r = await exec(id, { command: ['/bin/sh'], tty: true, rows: 24, cols: 80 }, (ws) => {
      ws.send(JSON.stringify({ resize: { rows: 40, cols: 120 } }));
      ws.send(Buffer.from('echo hi\n'));
      setTimeout(() => ws.send(Buffer.from('\x03')), 50);
    });
    assert.match(r.output, /resized 40x120/);
    assert.match(r.output, /echo hi/);
    assert.deepEqual(r.exit, { exitCode: 130 });
  });

  test('stop, a second stop is a typed 409, start, delete, then 404', async () => {
    const stopped = await hm.instances.stop(id);
    assert.equal(stopped.state, 'Stopped');
    await assert.rejects(hm.instances.stop(id), (e: unknown) => {
      assert.ok(e instanceof ConflictError);
      assert.equal((e.error as { code?: string }).code, 'invalid_state');
      assert.equal(e.headers.get('x-should-retry'), 'false');
      return true;
    });
    const refusedStatus = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${baseURL.replace('http', 'ws')}/instances/${id}/exec`, {
        headers: { authorization: `Bearer ${h.tokens.write}` },
      });
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => reject(new Error('upgraded although the instance is stopped')));
      ws.on('error', () => {});
    });
    assert.equal(refusedStatus, 409, 'exec on a stopped instance is 409 before the upgrade');
    const started = await hm.instances.start(id, {});
    assert.ok(['Initializing', 'Running'].includes(started.state), started.state);
    await hm.instances.delete(id);
    await assert.rejects(hm.instances.get(id), NotFoundError);
  });

  test('a bad token is an AuthenticationError; a bad body a 400 naming the field', async () => {
    const bad = new Hypeman({ apiKey: 'wrong', baseURL, maxRetries: 0 });
    await assert.rejects(bad.instances.list(), AuthenticationError);
    const res = await fetch(`${baseURL}/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.tokens.write}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Bad Name', image: 'x' }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'invalid_request');
    assert.match(body.message, /body\.name/);
  });

  test('wait validates its timeout and target', async () => {
    const inst = await hm.instances.create({ name: 'hm-two', image: 'vmplane-busybox' });
    const r = await fetch(`${baseURL}/instances/${inst.id}/wait?state=Running&timeout=bogus`, {
      headers: { authorization: `Bearer ${h.tokens.read}` },
    });
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { code: string }).code, 'invalid_timeout');
    const u = await fetch(`${baseURL}/instances/${inst.id}/wait?state=Unknown`, {
      headers: { authorization: `Bearer ${h.tokens.read}` },
    });
    assert.equal(((await u.json()) as { code: string }).code, 'invalid_state');
    await hm.instances.delete(inst.id);
  });
});
