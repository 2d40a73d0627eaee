import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestEntry } from '@vmplane/proxmox-sim';
import { sim, tokenClient, violations } from './sim.js';

// Behaviours the client promises that the simulator would otherwise accept either way: the wire
// format of writes, the options of delete, and the backoff of Task.wait().

const writes = (entries: readonly RequestEntry[], method: string, template: string) =>
  entries.filter((e) => e.method === method && e.template === template).map((e) => [e.contentType, e.params]);

test('writes go out as JSON bodies carrying the expected parameter names', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }] });
  const pve = tokenClient(s);
  const vm = pve.qemu('pve1', 100);
  await (await vm.updateConfig({ description: 'contract', onboot: true }, { delete: ['tags'] })).wait();
  await (await vm.snapshots.create('s1', { description: 'first', vmstate: false })).wait();
  await (await vm.start()).wait();
  const log = s.requests.entries;
  assert.deepEqual(writes(log, 'POST', '/nodes/{node}/qemu/{vmid}/config'), [
    ['application/json', ['delete', 'description', 'onboot']],
  ]);
  assert.deepEqual(writes(log, 'POST', '/nodes/{node}/qemu/{vmid}/snapshot'), [
    ['application/json', ['description', 'snapname', 'vmstate']],
  ]);
  // A write without parameters still sends a JSON body (an empty object).
  assert.deepEqual(writes(log, 'POST', '/nodes/{node}/qemu/{vmid}/status/start'), [['application/json', []]]);
  const forms = log.filter(
    (e) => e.method !== 'GET' && e.contentType !== undefined && e.contentType !== 'application/json',
  );
  assert.deepEqual(forms, [], 'no write went out in another format');
});

test('delete sends purge, destroy-unreferenced-disks and skiplock, and the simulator acts on them', async () => {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 300, node: 'pve1', status: 'stopped', pool: 'prod', config: { lock: 'backup' } },
      { vmid: 301, node: 'pve1', status: 'stopped' },
    ],
  });
  const pve = tokenClient(s);
  const stray = (vmid: number) => {
    const disk = String(s.state.guests.get(vmid)?.config.scsi0 ?? '').split(',')[0] ?? '';
    const storage = disk.split(':')[0] ?? '';
    const volid = `${storage}:vm-${vmid}-disk-9`;
    s.state.volumesOf('pve1', storage).set(volid, {
      volid,
      format: 'raw',
      size: 1024 ** 3,
      content: 'images',
      ctime: Math.floor(s.clock.now() / 1000),
      vmid,
    });
    return { disk, volid, exists: (v: string) => s.state.findVolume('pve1', v) !== undefined };
  };
  const inResources = async (vmid: number) =>
    (await pve.cluster.resources({ type: 'vm', fresh: true })).some((r) => r.vmid === vmid);
  const deletes = () => writes(s.requests.entries, 'DELETE', '/nodes/{node}/qemu/{vmid}');

  // A locked guest cannot be destroyed without skiplock.
  const locked = pve.qemu('pve1', 300);
  await assert.rejects(locked.delete({ purge: true, destroyUnreferencedDisks: true }), /locked/);
  assert.ok(await inResources(300), 'the refused delete left the guest in place');
  const a = stray(300);
  await (await locked.delete({ purge: true, destroyUnreferencedDisks: true, skiplock: true })).wait();
  assert.deepEqual(deletes(), [
    [undefined, ['destroy-unreferenced-disks', 'purge']],
    [undefined, ['destroy-unreferenced-disks', 'purge', 'skiplock']],
  ]);
  assert.equal(s.state.guests.has(300), false);
  assert.equal(await inResources(300), false, 'gone from the cluster resources');
  assert.equal(s.state.pools.get('prod')?.members.has('qemu/300'), false, 'gone from its pool');
  assert.equal(a.exists(a.disk), false, 'its referenced disk is destroyed');
  assert.equal(a.exists(a.volid), false, 'destroy-unreferenced-disks destroyed the unreferenced disk too');

  // Without destroyUnreferencedDisks the unreferenced disk stays, as in PVE.
  const b = stray(301);
  await (await pve.qemu('pve1', 301).delete({ purge: true })).wait();
  assert.deepEqual(deletes().at(-1), [undefined, ['purge']]);
  assert.equal(b.exists(b.disk), false);
  assert.equal(b.exists(b.volid), true, 'an unreferenced disk survives a plain delete');
});

test('Task.wait() polls with growing intervals, not at a fixed rate', async () => {
  const duration = 2_500;
  const initial = 100;
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1' }], taskDuration: duration });
  const pve = tokenClient(s);
  const task = await pve.qemu('pve1', 100).start();
  const done = await task.wait({ interval: initial, maxInterval: 60_000, timeout: 30_000 });
  assert.equal(done.exitstatus, 'OK');
  const polls = s.requests.entries.filter(
    (e) => e.template === '/nodes/{node}/tasks/{upid}/status' && e.path.includes(task.upid),
  );
  // Polling every `initial` ms would take duration / initial = 25 requests; growing by 1.5 takes ~8.
  const fixed = duration / initial;
  assert.ok(polls.length >= 3, `polled ${polls.length} times`);
  assert.ok(polls.length <= fixed / 2, `polled ${polls.length} times, fixed polling would take ${fixed}`);
  // Intervals by the simulator's clock. With jitter 0.2 and factor 1.5 each is at least 1.2 times
  // the previous; the slack only absorbs scheduling noise.
  const at = polls.map((e) => e.at ?? Number.NaN);
  const intervals = at.slice(1).map((t, i) => t - (at[i] as number));
  for (let i = 1; i < intervals.length; i++) {
    assert.ok(
      (intervals[i] as number) >= (intervals[i - 1] as number) - 10,
      `interval ${i} shrank: ${intervals.join(', ')}`,
    );
  }
  assert.ok((intervals.at(-1) as number) >= 2 * (intervals[0] as number), `intervals grew: ${intervals.join(', ')}`);
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
