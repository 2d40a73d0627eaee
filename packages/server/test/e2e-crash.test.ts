import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore } from '@vmplane/core';
import type { Simulator } from '@vmplane/proxmox-sim';
import {
  type GpqEvent,
  guestSshPort,
  type Mirror,
  PREFIX,
  parseGpq,
  simConfig,
  simVmids,
  startMirror,
  startSim,
} from './support/e2e.js';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '..', 'bin', 'vmplane-server.ts');

let sim: Simulator;
let mirror: Mirror;
let dir: string;
let configPath: string;
let token: string;
const children = new Set<ChildProcess>();
const sshPort = guestSshPort();

before(async () => {
  // Guests never finish booting: the install sits in `waiting for ready` until it is killed.
  sim = await startSim({ guestSshPort: sshPort, bootDelayMs: 3_600_000 });
  mirror = await startMirror();
  dir = await mkdtemp(join(tmpdir(), `vmplane-${PREFIX}-crash-`));
  configPath = await simConfig(dir, sim, mirror, sshPort);
  const store = await openStore({ dataDir: join(dir, 'data') });
  token = (await store.tokens.create({ scope: 'write', name: PREFIX })).token;
  await store.close();
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  await sim?.close();
  await mirror?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The bin in a process of its own; resolves with its URL once it printed the ready line. */
function spawnServer(): Promise<{ child: ChildProcess; url: string; exited: Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=vmplane-source',
      '--import',
      'tsx',
      BIN,
      '--data-dir',
      join(dir, 'data'),
      '--port',
      '0',
      '--config',
      configPath,
    ],
    {
      cwd: join(here, '..'),
      env: { PATH: process.env.PATH ?? '', VMPLANE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ready line within 60 s: ${out}\n${err}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: m[1], exited });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before it was ready: ${err}`));
    });
  });
}

describe('the server killed with SIGKILL mid-install and restarted', () => {
  test('rolls the install back (no guest, no allocation), ends its journal with an error, keeps every event', async () => {
    const first = await spawnServer();
    const abort = new AbortController();
    const res = await fetch(`${first.url}/api/vm/install`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ os: 'debian', version: '12', name: `${PREFIX}-crash`, cpu: 1, ram: 512 }),
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    const opId = res.headers.get('x-operation-id');
    assert.ok(opId);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    let seen: GpqEvent[] = [];
    // Read until the guest exists and the install waits for it to answer (bounded by chunks).
    for (let i = 0; i < 10_000; i++) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      seen = parseGpq(text.slice(0, text.lastIndexOf('\n\n') + 2)).events;
      if (seen.some((e) => e.step === 'VM initialization > waiting for ready')) break;
    }
    const vmid = seen.find((e) => e.vm_id !== undefined)?.vm_id;
    assert.ok(
      seen.some((e) => e.step === 'VM initialization > waiting for ready'),
      `reached waiting for ready: ${text}`,
    );
    assert.ok(vmid !== undefined);
    assert.ok((await simVmids(sim)).includes(vmid), 'the guest exists on the backend before the kill');

    assert.ok(first.child.pid);
    process.kill(first.child.pid, 'SIGKILL');
    await first.exited;
    abort.abort();
    assert.equal(first.child.signalCode, 'SIGKILL');
    assert.ok((await simVmids(sim)).includes(vmid), 'the killed server undid nothing');

    // Restart: recovery runs before the server listens.
    const second = await spawnServer();
    const op = await fetch(`${second.url}/v1/operations/${opId}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(op.status, 200);
    const record = (await op.json()) as { status: string };
    assert.ok(['interrupted', 'failed'].includes(record.status), record.status);
    assert.ok(!(await simVmids(sim)).includes(vmid), 'no guest left on the backend');
    const list = (await (
      await fetch(`${second.url}/instances`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Array<{ name: string }>;
    assert.ok(!list.some((i) => i.name === `${PREFIX}-crash`), 'no instance record');
    assert.ok(second.child.pid);
    process.kill(second.child.pid, 'SIGTERM');
    await second.exited;

    const store = await openStore({ dataDir: join(dir, 'data') });
    try {
      assert.deepEqual(await store.allocations.list(), [], 'no allocation');
      const journal = await store.operations.events(opId);
      for (const e of seen) {
        const kept = journal.find((j) => j.seq === e.id);
        assert.ok(kept, `event ${e.id} was kept`);
        assert.equal(kept.step, e.step);
        assert.equal(kept.status, e.status);
        assert.equal(kept.message, e.message);
      }
      assert.equal(journal.at(-1)?.status, 'error', 'the journal ends with an error event');
      assert.deepEqual(
        journal.map((j) => j.seq),
        journal.map((_, i) => i + 1),
        'no gap in the journal',
      );
    } finally {
      await store.close();
    }
  });
});
