import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadSshKey, runSsh } from '@vmplane/core';
import type { Simulator } from '@vmplane/proxmox-sim';
import {
  assertEveryStage,
  guestSshPort,
  install,
  type Mirror,
  PREFIX,
  pve,
  pveTask,
  type Running,
  serve,
  simConfig,
  simImages,
  simVmids,
  stagesOf,
  startMirror,
  startSim,
  until,
} from './support/e2e.js';

let sim: Simulator;
let mirror: Mirror;
let r: Running;
const sshPort = guestSshPort();

before(async () => {
  sim = await startSim({ guestSshPort: sshPort });
  mirror = await startMirror();
  // A short readiness deadline: the silent-SSH case must end in an error, not wait 5 minutes.
  r = await serve((dir) => simConfig(dir, sim, mirror, sshPort, { readinessTimeoutMs: 4_000 }));
});
after(async () => {
  await r?.close();
  await sim?.close();
  await mirror?.close();
});

const name = (s: string) => `${PREFIX}-${s}`;

/** What an install left that it should not have: guests on the sim, allocations, the image. */
async function leftovers(opId: string, vmid: number | undefined) {
  const vmids = await simVmids(sim);
  return {
    guest: vmid !== undefined && vmids.includes(vmid),
    allocations: await r.server.store.allocations.list({ owner: opId }),
  };
}

describe('Proxmox install end to end (startServer over HTTP, the simulator)', () => {
  test('an install streams every stage in order and ends in a guest that answers SSH', async () => {
    const res = await install(r, { os: 'debian', version: '12', name: name('one'), cpu: 1, ram: 1024 });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.closed, 'ends with event: close');
    assertEveryStage(res.events);
    assert.ok(stagesOf(res.events).includes('SSH preparation > creating SSH key'), 'the first install makes the key');
    const last = res.events.at(-1);
    assert.equal(last?.status, 'success');
    assert.equal(typeof last?.vm_id, 'number');
    const vmid = last?.vm_id as number;
    assert.equal(last?.ip, `127.77.0.${vmid}`);
    assert.ok((await simVmids(sim)).includes(vmid));

    // The guest answers: SSH to its address through the simulator, with vmplane's key.
    const key = await loadSshKey(join(r.dir, 'data', 'ssh'));
    assert.ok(key, 'vmplane made its key in the data directory');
    const out = await runSsh(
      { host: `127.77.0.${vmid}`, port: sshPort, username: 'debian', key },
      'echo hello-from-guest',
      { timeout: 10_000 },
    );
    assert.equal(out.exitCode, 0);
    assert.ok(out.tail.includes('hello-from-guest'), out.tail.join('\n'));
    const inst = (await r.server.plane.listInstances()).find((i) => i.name === name('one'));
    assert.equal(inst?.state, 'Running');
  });

  test('20 concurrent installs, racing guests made on the backend, get distinct VMIDs and IPs', async () => {
    const before = new Set(await simVmids(sim));
    // Guests made by hand at VMIDs inside the range, while the installs run.
    const manual = [110, 111, 112];
    const installs = Array.from({ length: 20 }, (_, i) =>
      install(r, { os: 'debian', version: '12', name: name(`par${i}`), cpu: 1, ram: 512 }),
    );
    const made = manual.map(async (vmid) => {
      const { data } = await pve(sim, 'POST', '/nodes/pve1/qemu', { vmid: String(vmid), name: name(`hand${vmid}`) });
      return pveTask(sim, data);
    });
    const [results, manualTasks] = await Promise.all([Promise.all(installs), Promise.all(made)]);
    const handMade = manual.filter((_, i) => manualTasks[i] === 'OK');
    const vmids: number[] = [];
    const ips: string[] = [];
    for (const res of results) {
      const last = res.events.at(-1);
      // An install may lose its VMID to a hand-made guest only by failing honestly, never by sharing it.
      if (last?.status !== 'success') {
        assert.equal(last?.status, 'error', res.text);
        continue;
      }
      vmids.push(last.vm_id as number);
      ips.push(last.ip as string);
    }
    assert.ok(vmids.length >= 17, `most installs succeed (${vmids.length} of 20)`);
    assert.equal(new Set(vmids).size, vmids.length, `distinct VMIDs: ${vmids}`);
    assert.equal(new Set(ips).size, ips.length, 'distinct IPs');
    for (const v of vmids) {
      assert.ok(!before.has(v), `VMID ${v} was not taken before`);
      assert.ok(!handMade.includes(v), `VMID ${v} is not a hand-made guest's`);
    }
    // Each install's guest is its own on the backend: the name there matches.
    const { data } = await pve(sim, 'GET', '/cluster/resources?type=vm');
    const byVmid = new Map((data as Array<{ vmid: number; name?: string }>).map((g) => [g.vmid, g.name]));
    for (const v of handMade) assert.equal(byVmid.get(v), name(`hand${v}`), 'the hand-made guest is untouched');
    for (const res of results) {
      const last = res.events.at(-1);
      if (last?.status === 'success') assert.match(String(byVmid.get(last.vm_id as number)), /-par\d+$/);
    }
  });

  test('a VMID held by a guest made on the backend is refused for an explicit id', async () => {
    const res = await install(r, { os: 'debian', version: '12', name: name('clash'), id: 110 });
    assert.equal(res.events.at(-1)?.status, 'error');
    assert.deepEqual((await leftovers(String(res.opId), undefined)).allocations, []);
  });

  describe('a failure injected at each stage leaves nothing behind and ends with an error event', () => {
    const cases: Array<{
      what: string;
      body: Record<string, unknown>;
      stage: string;
      image?: string;
      arrange(vmid: number): void;
    }> = [
      {
        what: 'the download task fails',
        body: { os: 'ubuntu', version: '24.04' },
        stage: 'OS preparation > downloading OS image',
        image: 'ubuntu-24.04',
        arrange: () =>
          sim.faults.failTask('/nodes/{node}/storage/{storage}/download-url', {
            message: 'download failed: injected',
            times: 1,
          }),
      },
      {
        what: 'the create task fails',
        body: { os: 'rocky', version: '9' },
        stage: 'VM creation > creating VM',
        image: 'rocky-9',
        arrange: () =>
          sim.faults.failTask('/nodes/{node}/qemu', {
            message: 'unable to create VM: injected',
            method: 'POST',
            times: 1,
          }),
      },
      {
        what: 'SSH never answers (readiness timeout)',
        body: { os: 'debian', version: '11' },
        stage: 'VM initialization > waiting for ready',
        image: 'debian-11',
        arrange: (vmid) => sim.faults.guest(vmid, { ssh: 'silent' }),
      },
      {
        what: 'the OS init command fails in the guest',
        body: { os: 'ubuntu', version: '22.04' },
        stage: 'VM initialization > SSH initialization',
        image: 'ubuntu-22.04',
        arrange: (vmid) =>
          sim.faults.guest(vmid, { commands: [{ match: 'apt-get', exitcode: 100, stderr: 'E: injected' }] }),
      },
      {
        what: 'the reboot task fails',
        body: { os: 'debian', version: '13' },
        stage: 'VM initialization > rebooting VM',
        image: 'debian-13',
        arrange: () =>
          sim.faults.failTask('/nodes/{node}/qemu/{vmid}/status/reboot', {
            message: 'reboot failed: injected',
            times: 1,
          }),
      },
    ];
    let vmid = 230;
    for (const c of cases) {
      test(c.what, async () => {
        vmid++;
        const imagesBefore = await simImages(sim);
        c.arrange(vmid);
        try {
          const res = await install(r, { ...c.body, name: name(`fail${vmid}`), id: vmid, cpu: 1, ram: 512 });
          assert.equal(res.status, 200, res.text);
          assert.ok(res.closed);
          const last = res.events.at(-1);
          assert.equal(last?.status, 'error', `the last event is an error: ${JSON.stringify(last)}`);
          assert.ok(!res.events.some((e) => e.step === 'VM initialization > finalizing' && e.status === 'success'));
          assert.ok(
            res.events.some((e) => e.step === c.stage && e.status === 'error'),
            `${c.stage} is the stage that failed: ${stagesOf(res.events).join(' | ')}`,
          );
          const opId = String(res.opId);
          const left = await leftovers(opId, vmid);
          assert.equal(left.guest, false, 'no guest on the backend');
          assert.deepEqual(left.allocations, [], 'no allocation');
          assert.deepEqual(await r.server.store.allocations.list({ owner: opId }), []);
          const all = await r.server.store.allocations.list();
          assert.ok(!all.some((a) => a.value === String(vmid) || a.value === `127.77.0.${vmid}`), 'VMID and IP free');
          const images = await simImages(sim);
          assert.deepEqual(
            images.filter((v) => !imagesBefore.includes(v)),
            [],
            'no image file it downloaded',
          );
          assert.ok(!(await r.server.plane.listInstances()).some((i) => i.name === name(`fail${vmid}`)));
          const op = await r.server.plane.getOperation(opId);
          assert.equal(op.status, 'failed');
        } finally {
          sim.faults.guest(vmid, undefined);
        }
      });
    }
  });

  test('a guest stopped, then deleted, directly on the backend shows so through GET /instances/{id}', async () => {
    const res = await install(r, { os: 'debian', version: '12', name: name('outside'), cpu: 1, ram: 512 });
    const last = res.events.at(-1);
    assert.equal(last?.status, 'success', res.text);
    const vmid = last?.vm_id as number;
    const inst = (await r.server.plane.listInstances()).find((i) => i.name === name('outside'));
    assert.ok(inst);
    const get = () => fetch(`${r.server.url}/instances/${inst.id}`, { headers: r.auth() });
    assert.equal(((await (await get()).json()) as { state: string }).state, 'Running');

    const stop = await pve(sim, 'POST', `/nodes/pve1/qemu/${vmid}/status/stop`);
    assert.equal(await pveTask(sim, stop.data), 'OK');
    let state = '';
    await until(async () => {
      state = ((await (await get()).json()) as { state: string }).state;
      return state === 'Stopped';
    }, 'the instance shows Stopped');
    assert.equal(state, 'Stopped');

    const del = await pve(sim, 'DELETE', `/nodes/pve1/qemu/${vmid}?purge=1`);
    assert.equal(await pveTask(sim, del.data), 'OK');
    let status = 0;
    let body: { state?: string } = {};
    await until(async () => {
      const res = await get();
      status = res.status;
      body = (await res.json()) as { state?: string };
      return status === 404 || body.state === 'Unknown';
    }, 'the instance shows it is gone');
    assert.ok(status === 404 || body.state === 'Unknown', `${status} ${JSON.stringify(body)}`);
  });
});
