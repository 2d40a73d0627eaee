import assert from 'node:assert/strict';
import * as http from 'node:http';
import { after, test } from 'node:test';
import { ProxmoxClient } from '@vmplane/proxmox';
import { sim, tokenClient, violations } from './sim.js';

test('a task ending with WARNINGS: n is a success', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }] });
  const pve = tokenClient(s);
  s.faults.failNextTask('qmstart', 'WARNINGS: 2');
  const done = await (await pve.qemu('pve1', 100).start()).wait();
  assert.equal(done.exitstatus, 'WARNINGS: 2');
  s.faults.failNextTask('qmstop', 'WARNINGS: many');
  await assert.rejects((await pve.qemu('pve1', 100).stop()).wait(), /WARNINGS: many/);
});

test("execute returns what the simulator's scripted agent answers", async () => {
  const seen: Array<{ command: string[]; input: string | undefined }> = [];
  const s = await sim({
    nodes: 1,
    guests: [{ vmid: 100, node: 'pve1', status: 'running', config: { agent: '1' } }],
    agent: ({ command, input }) => {
      seen.push({ command, input });
      return command[0] === 'apt-get'
        ? { exitcode: 100, stdout: 'Reading package lists...\n', stderr: 'E: Unable to locate package nope\n' }
        : undefined;
    },
  });
  const pve = tokenClient(s);
  const r = await pve.qemu('pve1', 100).agent.execute(['apt-get', 'install', '-y', 'nope'], {
    input: 'y\n',
    timeout: 10_000,
  });
  assert.deepEqual(r, {
    exitCode: 100,
    stdout: 'Reading package lists...\n',
    stderr: 'E: Unable to locate package nope\n',
    truncated: false,
  });
  assert.deepEqual(seen[0], { command: ['apt-get', 'install', '-y', 'nope'], input: 'y\n' });
  // A command the script leaves alone falls back to the built-ins.
  assert.equal((await pve.qemu('pve1', 100).agent.execute(['echo', 'a  b'])).stdout, 'a  b\n');
});

test('clone: linked from a template, and full to another node and storage', async () => {
  const s = await sim({ nodes: 2, guests: [{ vmid: 100, node: 'pve1', name: 'base', status: 'stopped' }] });
  const pve = tokenClient(s);
  const base = pve.qemu('pve1', 100);
  await (await base.template()).wait();
  const linked = await base.clone({ name: 'linked', full: false, newid: 150 });
  assert.equal(linked.vmid, 150);
  await linked.task.wait();
  const linkedDisk = (await pve.qemu('pve1', 150).config()).disks.find((d) => !d.isCdrom);
  assert.match(linkedDisk?.volume ?? '', /^[\w-]+:100\//, 'a linked clone refers to the template base image');
  const full = await base.clone({ name: 'full-copy', full: true, target: 'pve2', storage: 'shared' });
  await full.task.wait();
  const copy = await pve.qemu('pve2', full.vmid).config();
  assert.equal(copy.name, 'full-copy');
  assert.ok(copy.disks.filter((d) => !d.isCdrom).every((d) => d.storage === 'shared'));
});

test('the cluster view enriches with at most `concurrency` requests in flight', async () => {
  const s = await sim({ nodes: 3, guests: 24, latency: 10 });
  // A counting proxy in front of the simulator: it sees every request the client sends.
  let inFlight = 0;
  let max = 0;
  const proxy = http.createServer((req, res) => {
    inFlight++;
    max = Math.max(max, inFlight);
    res.on('close', () => {
      inFlight--;
    });
    const up = http.request(
      { host: s.host, port: s.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => proxy.close(() => r())));
  const port = (proxy.address() as { port: number }).port;
  const pve = new ProxmoxClient({
    baseUrl: `http://127.0.0.1:${port}`,
    tokenId: s.credentials.tokenId,
    tokenSecret: s.credentials.tokenSecret,
  });
  after(() => pve.close());
  const view = await pve.cluster.view({ concurrency: 3, fresh: true });
  max = inFlight;
  const done = await view.enriched;
  assert.ok(done.guests.every((g) => g.enriched || g.enrichError));
  assert.ok(max <= 3, `at most 3 requests in flight, saw ${max}`);
  assert.ok(max > 1, 'enrichment runs in parallel');
});

test("the caller's signal stops the cluster view's background enrichment", async () => {
  const s = await sim({ nodes: 2, guests: 20, latency: 20 });
  const pve = tokenClient(s);
  const controller = new AbortController();
  const view = await pve.cluster.view({ concurrency: 2, fresh: true, signal: controller.signal });
  controller.abort();
  await assert.rejects(view.enriched);
  assert.equal(view.done, true);
  const sent = s.requests.total;
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(s.requests.total <= sent + 2, 'no new enrichment requests after the abort');
  assert.ok(!view.latest.guests.every((g) => g.enriched), 'enrichment stopped early');
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
