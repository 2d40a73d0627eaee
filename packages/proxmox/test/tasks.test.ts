import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortError, OperationFailedError, ProxmoxError, parseUpid, TimeoutError } from '@vmplane/proxmox';
import { sim, tokenClient, violations } from './sim.js';

const guests = [{ vmid: 100, node: 'pve1', status: 'stopped' as const }];

test('a task waits to OK, and its UPID names node, type and token user', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  const task = await pve.qemu('pve1', 100).start();
  const upid = parseUpid(task.upid);
  assert.equal(upid.node, 'pve1');
  assert.equal(upid.type, 'qmstart');
  assert.equal(upid.id, '100');
  assert.equal(upid.tokenId, s.credentials.tokenId.split('!')[1]);
  const done = await task.wait({ timeout: 10_000 });
  assert.equal(done.status, 'stopped');
  assert.equal(done.exitstatus, 'OK');
  const again = pve.tasks.get(task.upid);
  assert.equal((await again.status()).exitstatus, 'OK');
  assert.ok((await pve.tasks.list()).some((t) => t.upid === task.upid));
  assert.ok((await pve.tasks.listOnNode('pve1', { limit: 50 })).some((t) => t.upid === task.upid));
});

test('a failed task is an OperationFailedError with the log tail', async () => {
  const s = await sim({ nodes: 1, guests });
  const pve = tokenClient(s);
  s.faults.failNextTask('qmstart', 'start failed: no space left');
  const task = await pve.qemu('pve1', 100).start();
  await assert.rejects(task.wait(), (e: unknown) => {
    assert.ok(e instanceof OperationFailedError);
    assert.ok(e instanceof ProxmoxError);
    assert.equal(e.operationId, task.upid);
    assert.match(e.message, /no space left/);
    assert.ok(e.logTail.length > 0);
    return true;
  });
});

test('the log streams as an AsyncIterable until the task ends', async () => {
  const s = await sim({ nodes: 1, guests, taskDuration: 200 });
  const pve = tokenClient(s);
  const task = await pve.qemu('pve1', 100).start();
  const lines: string[] = [];
  for await (const line of task.follow({ interval: 20 })) lines.push(line.t);
  assert.ok(lines.length > 0);
  assert.equal(lines.at(-1), 'TASK OK');
  const numbers = (await task.log()).map((l) => l.n);
  assert.deepEqual(
    numbers,
    [...numbers].sort((a, b) => a - b),
  );
});

test('abort and timeout mid-wait end the wait, not the task, and name the task', async () => {
  const s = await sim({ nodes: 1, guests, taskDuration: 60_000 });
  const pve = tokenClient(s);
  const task = await pve.qemu('pve1', 100).start();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const names = (Kind: typeof AbortError | typeof TimeoutError) => (e: unknown) => {
    assert.ok(e instanceof Kind, String(e));
    assert.equal(e.operationId, task.upid);
    assert.equal(e.sent, true);
    assert.ok(e.message.includes(task.upid), e.message);
    assert.equal(e.backend, 'proxmox');
    return true;
  };
  await assert.rejects(task.wait({ signal: controller.signal, interval: 10 }), names(AbortError));
  await assert.rejects(task.wait({ timeout: 50, interval: 10 }), names(TimeoutError));
  // Following the log, too.
  const follow = new AbortController();
  setTimeout(() => follow.abort(), 50);
  await assert.rejects(
    (async () => {
      for await (const _ of task.follow({ signal: follow.signal, interval: 10 })) {
        // read on
      }
    })(),
    names(AbortError),
  );
  assert.equal((await task.status()).status, 'running');
  await task.stop();
});

test('an agent command that outlives its call: the TimeoutError names the pid that runs on', async () => {
  const s = await sim({
    nodes: 1,
    guests: [{ vmid: 100, node: 'pve1', status: 'running', config: { agent: '1' } }],
  });
  const pve = tokenClient(s);
  const agent = pve.qemu('pve1', 100).agent;
  // exec answers at once; the simulated guest's sleep outlasts the deadline.
  await assert.rejects(agent.execute(['sleep', '30'], { timeout: 150, interval: 10 }), (e: unknown) => {
    assert.ok(e instanceof TimeoutError, String(e));
    assert.match(e.operationId ?? '', /^pid \d+$/);
    assert.equal(e.sent, true);
    return true;
  });
  // Timed out before the command started: nothing to name.
  s.faults.latency = 300;
  await assert.rejects(agent.execute(['true'], { timeout: 50 }), (e: unknown) => {
    assert.ok(e instanceof TimeoutError);
    assert.equal(e.operationId, undefined);
    return true;
  });
  s.faults.latency = 0;
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
