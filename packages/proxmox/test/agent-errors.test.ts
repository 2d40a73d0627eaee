import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionError, ForbiddenError, isAgentUnavailable, ServerError, UnauthorizedError } from '@vmplane/proxmox';
import { sim, tokenClient, violations } from './sim.js';

const INTERFACES = '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces';
const PING = '/nodes/{node}/qemu/{vmid}/agent/ping';

async function setup() {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 100, node: 'pve1', status: 'running', config: { agent: '1' } },
      { vmid: 101, node: 'pve1', status: 'running', config: { agent: '0' } },
    ],
  });
  return { s, pve: tokenClient(s) };
}

test('details() leaves interfaces out only when PVE says the agent is not there or not running', async () => {
  const { s, pve } = await setup();
  const vm = pve.qemu('pve1', 100);
  const full = await vm.details();
  assert.ok(
    full.interfaces?.some((i) => i.name !== 'lo'),
    'a running agent answers',
  );
  // PVE's agent_available answers, each a 500 with exactly these words.
  for (const message of [
    'QEMU guest agent is not running',
    'No QEMU guest agent configured',
    'VM 100 is not running',
  ]) {
    s.faults.failNext(INTERFACES, { status: 500, message });
    const d = await vm.details({ fresh: true });
    assert.equal(d.interfaces, undefined, message);
    assert.equal(d.status.status, 'running');
  }
  // The real thing: a VM without `agent` in its config.
  const plain = await pve.qemu('pve1', 101).details();
  assert.equal(plain.interfaces, undefined);
});

test('details() passes on every other failure of the agent call: 401, 403, another 500, a lost connection', async () => {
  const { s, pve } = await setup();
  const vm = pve.qemu('pve1', 100);
  const cases: Array<[() => void, (e: unknown) => boolean]> = [
    [
      () => s.faults.failNext(INTERFACES, { status: 401, message: 'invalid token' }),
      (e) => e instanceof UnauthorizedError,
    ],
    [
      () => s.faults.failNext(INTERFACES, { status: 403, message: 'Permission check failed' }),
      (e) => e instanceof ForbiddenError,
    ],
    [
      () => s.faults.failNext(INTERFACES, { status: 500, message: 'VM 100 qmp command failed - got timeout' }),
      (e) => e instanceof ServerError && /got timeout/.test(e.message),
    ],
    // Not the exact words: a message that merely contains them is another failure.
    [
      () => s.faults.failNext(INTERFACES, { status: 500, message: 'QEMU guest agent is not running (and more)' }),
      (e) => e instanceof ServerError,
    ],
    [
      () => s.faults.failNext(INTERFACES, { status: 503, message: 'QEMU guest agent is not running', times: 5 }),
      (e) => e instanceof ServerError && e.status === 503,
    ],
    [() => s.faults.dropNext(INTERFACES, { times: 5 }), (e) => e instanceof ConnectionError],
  ];
  for (const [inject, expected] of cases) {
    inject();
    await assert.rejects(vm.details({ fresh: true }), expected);
    s.faults.clear();
  }
});

test('agent.isRunning() is false only for the agent-unavailable answers', async () => {
  const { s, pve } = await setup();
  const agent = pve.qemu('pve1', 100).agent;
  assert.equal(await agent.isRunning(), true);
  s.faults.failNext(PING, { status: 500, message: 'QEMU guest agent is not running' });
  assert.equal(await agent.isRunning(), false);
  assert.equal(await pve.qemu('pve1', 101).agent.isRunning(), false, 'no agent configured');
  s.faults.failNext(PING, { status: 401, message: 'invalid token' });
  await assert.rejects(agent.isRunning(), UnauthorizedError);
  s.faults.failNext(PING, { status: 500, message: 'internal error' });
  await assert.rejects(agent.isRunning(), ServerError);
  // The predicate itself, for callers with their own agent calls.
  s.faults.failNext(PING, { status: 500, message: 'No QEMU guest agent configured' });
  const refused = await agent.ping().catch((error: unknown) => error);
  assert.equal(isAgentUnavailable(refused, 100), true);
  assert.equal(isAgentUnavailable(new Error('QEMU guest agent is not running'), 100), false);
});

test('the cluster view: no addresses without a running agent, a said failure for anything else', async () => {
  const { s, pve } = await setup();
  s.faults.failNext(INTERFACES, { status: 500, message: 'QEMU guest agent is not running' });
  const quiet = (await (await pve.cluster.view({ fresh: true })).enriched).guests.find((g) => g.vmid === 100);
  assert.equal(quiet?.enriched, true);
  assert.equal(quiet?.ip, undefined);
  assert.equal(quiet?.enrichError, undefined);
  s.faults.failNext(INTERFACES, { status: 403, message: 'Permission check failed' });
  const refused = (await (await pve.cluster.view({ fresh: true })).enriched).guests.find((g) => g.vmid === 100);
  assert.equal(refused?.enriched, true);
  assert.equal(refused?.config?.agentEnabled, true, 'the config read stays');
  assert.match(refused?.enrichError ?? '', /^addresses: .*Permission check failed/);
  const fine = (await (await pve.cluster.view({ fresh: true })).enriched).guests.find((g) => g.vmid === 100);
  assert.ok(fine?.ip);
  assert.equal(fine?.enrichError, undefined);
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});

test('a container that is not running has no interfaces: PVE 9 answers null, PVE 8 a 500', async () => {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 200, type: 'lxc', node: 'pve1', status: 'stopped' },
      { vmid: 201, type: 'lxc', node: 'pve1', status: 'running' },
    ],
  });
  const pve = tokenClient(s);
  assert.deepEqual(await pve.lxc('pve1', 200).interfaces(), []);
  assert.equal(await pve.lxc('pve1', 200).ip(), undefined);
  const running = pve.lxc('pve1', 201);
  assert.ok((await running.interfaces()).some((i) => i.name === 'eth0'));
  // It stops between the status read and the interfaces read: no interfaces, no error.
  s.faults.failNext('/nodes/{node}/lxc/{vmid}/interfaces', { status: 500, message: 'CT 201 not running' });
  const d = await running.details({ fresh: true });
  assert.equal(d.interfaces, undefined);
  const view = await (await pve.cluster.view({ addresses: true, fresh: true })).enriched;
  const stopped = view.guests.find((g) => g.vmid === 200);
  assert.equal(stopped?.interfaces, undefined);
  assert.equal(stopped?.enrichError, undefined);
  assert.ok(view.guests.find((g) => g.vmid === 201)?.interfaces?.some((i) => i.name === 'eth0'));
});
