/**
 * Benchmark (not a test): vmplane's server, measured side by side in one run. See README.md next
 * to this file.
 *
 *   npm run bench:server [-- --lxd 10 --installs 50 --subscribers 100 --instances 200 --seconds 5]
 */

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  ControlPlane,
  createLxdProvider,
  createProxmoxProvider,
  GoPveQemuAllocator,
  ImageCatalogue,
  INSTALL_STAGES,
  type InstallPlan,
  type InstallSpec,
  type Instance,
  openStore,
  PolicyAllocator,
  type Provider,
  type SqlStore,
} from '@vmplane/core';
import { LxdClient } from '@vmplane/lxd';
import autocannon from 'autocannon';
import type { FastifyInstance } from 'fastify';
import { arg } from '../../../tools/bench.js';
import { removeLeftoverLogs } from '../../lxd/test/support/lxd.js';
import { buildServer } from '../src/index.js';
import type { ServerConfig } from '../src/types.js';
import { FakeProvider } from '../test/support/fake-provider.js';
import { call, type SseFrame, sse, wallNow } from './http.js';
import { median, percentile, type Row, renderTable } from './table.js';

/** Instances brought to Running per path (API, direct), one pair per repetition. */
const LXD_COUNT = arg('lxd', 10);
const INSTALLS = arg('installs', 50);
const SUBSCRIBERS = arg('subscribers', 100);
const READ_INSTANCES = arg('instances', 200);
/** Seconds of autocannon load per read route. */
const SECONDS = arg('seconds', 5);
/** autocannon's connections per read route. */
const CONNECTIONS = arg('connections', 10);
/** `--parts lxd,installs,fanout,reads`: only those parts (all by default). */
const PARTS = new Set(
  (process.argv.includes('--parts')
    ? String(process.argv[process.argv.indexOf('--parts') + 1])
    : 'lxd,installs,fanout,reads'
  ).split(','),
);
const ALIAS = process.env.VMPLANE_IMAGE_ALIAS ?? 'vmplane-busybox';
const GATEWAY = '127.77.0.1';
/** Each fan-out stage takes this long (the fake provider's pace), so events come spread out. */
const STAGE_MS = 20;

/** Everything this run makes on LXD is named `${RUN}-...`; cleanup removes exactly those. */
const RUN = `vmpsb-${randomBytes(3).toString('hex')}`;
const started = performance.now();

const uptime = async () => (await promisify(execFile)('uptime')).stdout.trim();
const log = (msg: string) =>
  process.stderr.write(`[bench] ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s  ${msg}\n`);

/** Rejects after `ms`: every wait of the benchmark is bounded. */
async function bounded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- what this run starts, and its cleanup: always, once, even on Ctrl-C ----------------------

const closers: Array<{ what: string; close: () => Promise<unknown> | unknown }> = [];
let tmp: string | undefined;
let lxd: LxdClient | undefined;
let cleaning: Promise<void> | undefined;
let aborting = false;
const stopIfAborting = () => {
  if (aborting) throw new Error('interrupted');
};

async function deleteMine(client: LxdClient): Promise<number> {
  const mine = (await client.instances.names()).filter((n) => n.startsWith(`${RUN}-`));
  if (mine.length) log(`cleanup: deleting ${mine.length} instance(s) named ${RUN}-*`);
  for (const name of mine) {
    try {
      await client.instances.delete(name, { force: true, timeout: 60_000 });
    } catch (error) {
      if ((error as { status?: number }).status !== 404) log(`cleanup of ${name} failed: ${String(error)}`);
    }
  }
  return mine.length;
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    aborting = true;
    // Servers, planes and stores first (newest first): nothing of ours makes instances after this.
    for (const { what, close } of closers.reverse()) {
      try {
        await bounded(`closing ${what}`, 30_000, Promise.resolve(close()));
      } catch (error) {
        log(`closing ${what} failed: ${String(error)}`);
      }
    }
    if (lxd) {
      try {
        // An instance whose create was under way may appear after a first look: look again.
        for (let round = 0; round < 5; round++) {
          if ((await deleteMine(lxd)) === 0) break;
          await sleep(1_000);
        }
      } catch (error) {
        log(`LXD cleanup failed: ${String(error)}`);
      }
      // LXD 5.0.2 keeps a deleted container's log directory; this run's go with its containers.
      removeLeftoverLogs((entry) => entry.startsWith(`${RUN}-`) || entry.includes(`_${RUN}-`));
      lxd.close();
    }
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---- a plane and a server on loopback -------------------------------------------------------

interface World {
  url: string;
  app: FastifyInstance;
  plane: ControlPlane;
  store: SqlStore;
  token: string;
}

async function world(
  label: string,
  providers: Provider[],
  allocator: (store: SqlStore) => PolicyAllocator,
  config: ServerConfig,
): Promise<World> {
  const store = await openStore({ dataDir: join(tmp as string, label) });
  closers.push({ what: `${label} store`, close: () => store.close() });
  const plane = new ControlPlane({ store, providers, allocator: allocator(store), reconcileIntervalMs: 3_600_000 });
  closers.push({ what: `${label} plane`, close: () => plane.close() });
  await plane.start();
  const app = await buildServer({ plane, store, config: { logger: false, ...config } });
  closers.push({ what: `${label} server`, close: () => app.close() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const { token } = await store.tokens.create({ scope: 'admin', name: `bench-${label}` });
  return { url: `http://127.0.0.1:${port}`, app, plane, store, token };
}

const idAllocator = (store: SqlStore) =>
  new PolicyAllocator(store.allocations, { idRange: { start: 100, end: 999_999 } });

// ---- 1. time to Running on LXD: through the API against straight through @vmplane/lxd --------

interface LxdResult {
  api: number[];
  direct: number[];
}

async function timeToRunning(): Promise<LxdResult> {
  lxd = await LxdClient.connect();
  const provider = createLxdProvider({ name: 'lxd', client: lxd, readinessTimeoutMs: 60_000 });
  closers.push({ what: 'LXD provider', close: () => provider.close() });
  const w = await world('lxd', [provider], idAllocator, { providerTypes: { lxd: 'lxd' } });
  const client = lxd;

  // The same guest both ways: 1 vCPU, 256 MiB, the busybox image.
  const viaApi = async (name: string): Promise<number> => {
    const t0 = performance.now();
    const created = await call('POST', `${w.url}/instances`, w.token, {
      body: { name, image: ALIAS, provider: 'lxd', vcpus: 1, size: '256MB', overlay_size: '1GB' },
      timeoutMs: 120_000,
    });
    if (created.status !== 201)
      throw new Error(`POST /instances answered ${created.status}: ${JSON.stringify(created.body)}`);
    const id = (created.body as { id: string }).id;
    const opId = created.headers.get('x-operation-id');
    const waited = await call('GET', `${w.url}/instances/${id}/wait?state=Running&timeout=120s`, w.token, {
      timeoutMs: 125_000,
    });
    const ms = performance.now() - t0;
    const got = waited.body as { state?: string; timed_out?: boolean };
    if (waited.status !== 200 || got.state !== 'Running' || got.timed_out)
      throw new Error(`wait for Running answered ${waited.status}: ${JSON.stringify(waited.body)}`);
    if (opId) apiOps.push(opId);
    return ms;
  };
  const apiOps: string[] = [];

  // The provider's own readiness: exec `true` until it exits 0, backing off from 250 ms.
  const direct = async (name: string): Promise<number> => {
    const t0 = performance.now();
    const op = await client.instances.createFromImage(
      name,
      { alias: ALIAS },
      { config: { 'limits.cpu': '1', 'limits.memory': '256MiB' } },
      { timeout: 120_000 },
    );
    await op.wait({ timeout: 120_000 });
    await client.instances.start(name, { timeout: 120_000 });
    const until = performance.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await client.instances.exec(name, { command: ['true'], timeout: 10_000 });
        if (r.exitCode === 0) break;
      } catch (error) {
        if (performance.now() > until) throw error;
      }
      if (performance.now() > until) throw new Error(`${name}: exec of true never answered 0`);
      await sleep(Math.min(5_000, 250 * 2 ** attempt));
    }
    return performance.now() - t0;
  };

  const remove = (name: string) => client.instances.delete(name, { force: true, timeout: 60_000 });
  const paths = { api: viaApi, direct } as const;
  const names = ['api', 'direct'] as const;
  const out: LxdResult = { api: [], direct: [] };
  // One untimed pair first: the first create on a daemon pays for things the others do not.
  log('LXD: warm-up pair (not counted)');
  for (const p of names) {
    const name = `${RUN}-warm-${p}`;
    await paths[p](name);
    await remove(name);
  }
  for (let r = 0; r < LXD_COUNT; r++) {
    // The order rotates each repetition, so neither path always goes first.
    const order: Array<(typeof names)[number]> = r % 2 === 0 ? ['api', 'direct'] : ['direct', 'api'];
    for (const p of order) {
      stopIfAborting();
      const name = `${RUN}-${p}-${r}`;
      const ms = await paths[p](name);
      out[p].push(ms);
      await remove(name);
    }
    log(`LXD: ${r + 1}/${LXD_COUNT}: api ${out.api.at(-1)?.toFixed(0)} ms, direct ${out.direct.at(-1)?.toFixed(0)} ms`);
  }
  await logSlowestStages(w, apiOps.slice(1));
  return out;
}

/** Where the API's time went (stderr, not the table): the install stages' median durations. */
async function logSlowestStages(w: World, opIds: readonly string[]): Promise<void> {
  const byStep = new Map<string, number[]>();
  for (const opId of opIds) {
    const r = await sse(`${w.url}/v1/operations/${opId}/events?follow=false`, w.token, { timeoutMs: 10_000 });
    for (const f of r.frames) {
      if (f.event !== 'stage' || !f.data) continue;
      const e = JSON.parse(f.data) as { step: string; status: string; elapsed?: number };
      if (e.status !== 'success' || e.elapsed === undefined) continue;
      byStep.set(e.step, [...(byStep.get(e.step) ?? []), e.elapsed * 1000]);
    }
  }
  const top = [...byStep].map(([step, ms]) => [step, median(ms)] as const).sort((a, b) => b[1] - a[1]);
  const total = top.reduce((sum, [, ms]) => sum + ms, 0);
  log(
    `LXD: API install stages, median ms (sum ${total.toFixed(0)}): ${top
      .slice(0, 6)
      .map(([step, ms]) => `${step.replace(/^.* > /, '')} ${ms.toFixed(0)}`)
      .join(', ')}`,
  );
}

// ---- 2. concurrent installs on the Proxmox simulator ------------------------------------------

/** A small qcow2 file: a version-3 header padded with deterministic bytes; nothing boots from it. */
function tinyQcow2(bytes = 256 * 1024): Buffer {
  const buf = Buffer.alloc(bytes);
  let x = 1;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    buf[i] = x & 0xff;
  }
  buf.fill(0, 0, 112);
  Buffer.from([0x51, 0x46, 0x49, 0xfb]).copy(buf, 0);
  buf.writeUInt32BE(3, 4);
  buf.writeUInt32BE(16, 20);
  buf.writeBigUInt64BE(2n * 1024n ** 3n, 24);
  buf.writeUInt32BE(104, 100);
  return buf;
}

/** A loopback mirror serving `files` by path. */
async function startMirror(files: Map<string, Buffer>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const body = files.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push({
    what: 'mirror',
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Commands the init step runs that the simulator's shell does not know: answered 0. */
const SCRIPTED = /apt-get|dnf |hostnamectl|useradd|usermod|getent|authorized_keys/;

interface InstallResult {
  ms: number[];
  wallMs: number;
  vmids: number[];
  ips: string[];
  failures: string[];
}

async function installs(): Promise<InstallResult> {
  const { startSimulator } = await import('@vmplane/proxmox-sim');
  const sshPort = 20_000 + Math.floor(Math.random() * 20_000);
  const sim = await startSimulator({
    nodes: 2,
    guests: 0,
    host: '127.0.0.1',
    taskDuration: 20,
    bootDelayMs: 50,
    guestSshPort: sshPort,
    guestExec: async (req) => (SCRIPTED.test(req.command) ? { exitcode: 0, stdout: '' } : undefined),
  });
  closers.push({ what: 'simulator', close: () => sim.close() });

  const files = new Map<string, Buffer>();
  const mirror = await startMirror(files);
  const catalogue = new ImageCatalogue({ mirrors: { debian: `${mirror.url}/debian` } });
  const image = catalogue.get('debian-12');
  const body = tinyQcow2();
  files.set(new URL(image.url).pathname, body);
  files.set(
    new URL(image.checksumUrl).pathname,
    Buffer.from(`${createHash('sha512').update(body).digest('hex')}  ${image.file}\n`),
  );

  const provider = createProxmoxProvider({
    name: 'sim',
    client: {
      baseUrl: sim.url,
      tokenId: sim.credentials.tokenId,
      tokenSecret: sim.credentials.tokenSecret,
      retry: { initial: 5, max: 20 },
    },
    storage: 'local',
    imageStorage: 'local',
    catalogue,
    sshKeyDir: join(tmp as string, 'sim-ssh'),
    sshPort,
    bootTimeoutMs: 60_000,
    network: { gateway: GATEWAY },
  });
  const w = await world(
    'sim',
    [provider],
    (store) =>
      new PolicyAllocator(store.allocations, {
        gopveqemu: {
          allocator: new GoPveQemuAllocator(store.allocations, { gateway: GATEWAY, ipStart: 100, ipEnd: 254 }),
          providers: ['sim'],
        },
      }),
    { providerTypes: { sim: 'proxmox' }, gopveqemu: { GATEWAY, ASSIGN_IP_START: 100, ASSIGN_IP_END: 254 } },
  );

  const out: InstallResult = { ms: [], wallMs: 0, vmids: [], ips: [], failures: [] };
  const one = async (i: number) => {
    const t0 = performance.now();
    const r = await sse(`${w.url}/api/vm/install`, w.token, {
      method: 'POST',
      body: { os: 'debian', version: '12', name: `${RUN}-i${i}`, cpu: 1, ram: 512, provider: 'sim' },
      timeoutMs: 180_000,
    });
    const ms = performance.now() - t0;
    const data = r.frames.filter((f) => f.event === undefined && f.data).map((f) => JSON.parse(f.data as string));
    const error = data.find((d) => d.status === 'error');
    const closed = r.frames.at(-1)?.event === 'close';
    const opId = String(r.headers['x-operation-id'] ?? '');
    const op = opId ? await call('GET', `${w.url}/v1/operations/${opId}`, w.token) : undefined;
    const status = (op?.body as { status?: string } | undefined)?.status;
    if (r.status !== 200 || !r.ended || !closed || error || status !== 'succeeded') {
      out.failures.push(
        `install ${i}: HTTP ${r.status}, ${closed ? 'closed' : 'not closed'}, operation ${status}: ${error?.message ?? ''}`,
      );
      return;
    }
    const vmid = data.findLast((d) => d.vm_id !== undefined)?.vm_id;
    const ip = data.findLast((d) => d.ip !== undefined)?.ip;
    if (typeof vmid !== 'number' || typeof ip !== 'string') {
      out.failures.push(`install ${i}: no vm_id or ip in its stream`);
      return;
    }
    out.ms.push(ms);
    out.vmids.push(vmid);
    out.ips.push(ip);
  };
  log(`sim: ${INSTALLS} installs at once`);
  const t0 = performance.now();
  await bounded('the installs', 240_000, Promise.all(Array.from({ length: INSTALLS }, (_, i) => one(i))));
  out.wallMs = performance.now() - t0;
  // The simulator's own view: the VMs it holds, each once.
  const held = [...sim.state.guests.keys()];
  if (held.length !== out.vmids.length) out.failures.push(`the simulator holds ${held.length} guests`);
  return out;
}

// ---- 3. one operation's SSE stream fanned out ---------------------------------------------------

/** The fake provider, each stage taking STAGE_MS, all of them held until `gate` opens. */
class PacedProvider extends FakeProvider {
  override install(spec: InstallSpec): InstallPlan {
    const plan = super.install(spec);
    const paced = {} as InstallPlan;
    for (const name of INSTALL_STAGES)
      paced[name] = async (ctx, state) => {
        await sleep(STAGE_MS);
        return plan[name](ctx, state);
      };
    return paced;
  }
}

interface FanoutResult {
  delays: number[];
  events: number;
  failures: string[];
}

async function fanout(): Promise<FanoutResult> {
  const provider = new PacedProvider('fake');
  const w = await world('fanout', [provider], idAllocator, { providerTypes: { fake: 'lxd' } });
  let open: () => void = () => {};
  provider.gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const started = await w.plane.install({
    spec: { name: `${RUN}-fan`, image: 'busybox', kind: 'container', vcpus: 1, memoryMiB: 64, diskGiB: 1 },
    provider: 'fake',
  });
  const opId = started.operation.id;
  let opened = 0;
  const firstFrame = new Set<number>();
  const streams = Array.from({ length: SUBSCRIBERS }, (_, i) =>
    sse(`${w.url}/v1/operations/${opId}/events`, w.token, {
      timeoutMs: 60_000,
      onOpen: () => opened++,
      onFrame: () => firstFrame.add(i),
    }),
  );
  // Every subscriber connected and past the journal's replay before the operation goes on.
  const until = performance.now() + 15_000;
  while ((opened < SUBSCRIBERS || firstFrame.size < SUBSCRIBERS) && performance.now() < until) await sleep(20);
  const out: FanoutResult = { delays: [], events: 0, failures: [] };
  if (opened < SUBSCRIBERS) out.failures.push(`only ${opened} of ${SUBSCRIBERS} subscribers connected`);
  await sleep(200);
  const releasedAt = Math.floor(wallNow());
  log(`fan-out: ${opened} subscribers on operation ${opId.slice(0, 8)}; releasing it`);
  open();
  const results = await bounded('the fan-out streams', 60_000, Promise.all(streams));
  const live = (f: SseFrame) => {
    if (f.event !== 'stage' || !f.data) return undefined;
    const at = Date.parse((JSON.parse(f.data) as { at: string }).at);
    return at >= releasedAt ? at : undefined;
  };
  const counts = new Set<number>();
  for (const [i, r] of results.entries()) {
    if (r.status !== 200 || !r.ended || r.frames.at(-1)?.event !== 'end') {
      out.failures.push(`subscriber ${i}: HTTP ${r.status}, ${r.ended ? 'ended' : 'cut'} without its end event`);
      continue;
    }
    let n = 0;
    for (const f of r.frames) {
      const at = live(f);
      if (at === undefined) continue;
      out.delays.push(f.receivedAt - at);
      n++;
    }
    counts.add(n);
  }
  const op = await w.plane.getOperation(opId);
  if (op.status !== 'succeeded') out.failures.push(`the operation ${op.status}`);
  if (counts.size !== 1)
    out.failures.push(`subscribers saw different numbers of live events: ${[...counts].join(', ')}`);
  out.events = Math.max(0, ...counts);
  return out;
}

// ---- 4. reads under load --------------------------------------------------------------------

interface ReadResult {
  one: autocannon.Result;
  list: autocannon.Result;
  failures: string[];
}

async function reads(): Promise<ReadResult> {
  const provider = new FakeProvider('fake');
  const w = await world('reads', [provider], idAllocator, { providerTypes: { fake: 'lxd' } });
  const now = new Date().toISOString();
  let id = '';
  for (let i = 0; i < READ_INSTANCES; i++) {
    const name = `${RUN}-r${i}`;
    const ref = { type: 'lxd', project: 'default', name, kind: 'container' } as const;
    const record: Instance = {
      id: `bench${i.toString().padStart(4, '0')}${randomBytes(4).toString('hex')}`,
      name,
      image: 'busybox',
      state: 'Running',
      size: '1GB',
      vcpus: 1,
      env: { ROLE: 'bench' },
      tags: { bench: RUN },
      network: { enabled: true, ip: `127.77.1.${(i % 254) + 1}` },
      created_at: now,
      started_at: now,
      expires_at: null,
      provider: 'fake',
      ref,
    };
    // Reads never ask the backend; the fake holds the same guests should the plane look anyway.
    provider.guests.set(name, { ref, name, state: 'Running', backendStatus: 'Running', files: new Map() });
    await w.store.instances.insert(record);
    if (i === Math.floor(READ_INSTANCES / 2)) id = record.id;
  }
  const failures: string[] = [];
  const listed = await call('GET', `${w.url}/instances`, w.token);
  const count = Array.isArray(listed.body) ? listed.body.length : -1;
  if (count !== READ_INSTANCES) failures.push(`GET /instances listed ${count}, not ${READ_INSTANCES}`);
  const load = async (path: string) => {
    const r = await autocannon({
      url: `${w.url}${path}`,
      headers: { authorization: `Bearer ${w.token}` },
      connections: CONNECTIONS,
      duration: SECONDS,
      timeout: 10,
      // The load comes from a worker thread: the server keeps this thread's event loop to itself.
      workers: 1,
    });
    if (r.errors || r.timeouts || r.non2xx)
      failures.push(`${path}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`);
    return r;
  };
  log(`reads: GET /instances/{id}, ${CONNECTIONS} connections, ${SECONDS} s`);
  const one = await load(`/instances/${id}`);
  log(`reads: GET /instances (${READ_INSTANCES}), ${CONNECTIONS} connections, ${SECONDS} s`);
  const list = await load('/instances');
  return { one, list, failures };
}

// ---- the run -----------------------------------------------------------------------------------

tmp = await mkdtemp(join(tmpdir(), `${RUN}-`));
const failures: string[] = [];
const rows: Row[] = [];

async function part<T>(key: string, name: string, fn: () => Promise<T>): Promise<T | undefined> {
  if (aborting || !PARTS.has(key)) return undefined;
  try {
    return await fn();
  } catch (error) {
    failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    log(`${name} failed: ${String(error)}`);
    return undefined;
  }
}

const loadBefore = await uptime();
const ttr = await part('lxd', 'LXD time to Running', () =>
  bounded('LXD time to Running', 20 * 60_000, timeToRunning()),
);
if (ttr)
  rows.push({
    label: 'time to Running, LXD busybox (median)',
    n: `${ttr.api.length}+${ttr.direct.length}`,
    value: median(ttr.api),
    direct: median(ttr.direct),
    unit: 'ms',
    note: `API: POST /instances + GET …/wait?state=Running; direct: @vmplane/lxd create+start+exec true; goal <= 1.05x`,
  });

const inst = await part('installs', 'sim installs', installs);
if (inst) {
  failures.push(...inst.failures);
  const collisions = inst.vmids.length - new Set(inst.vmids).size + (inst.ips.length - new Set(inst.ips).size);
  if (collisions > 0) failures.push(`${collisions} VMID/IP collision(s) among the installs`);
  const n = `${inst.ms.length}/${INSTALLS}`;
  rows.push(
    {
      label: `${INSTALLS} concurrent installs, throughput`,
      n,
      value: inst.ms.length / (inst.wallMs / 1000),
      unit: 'installs/s',
      note: `go-pve-qemu POST /api/vm/install (SSE to close) on proxmox-sim; ${(inst.wallMs / 1000).toFixed(1)} s wall`,
    },
    { label: 'install time p50', n, value: percentile(inst.ms, 50), unit: 'ms' },
    { label: 'install time p95', n, value: percentile(inst.ms, 95), unit: 'ms' },
    {
      label: 'VMID/IP collisions',
      n,
      value: collisions,
      unit: 'count',
      note: `${new Set(inst.vmids).size} distinct VMIDs, ${new Set(inst.ips).size} distinct IPs (must be 0)`,
    },
  );
}

const fan = await part('fanout', 'SSE fan-out', fanout);
if (fan) {
  failures.push(...fan.failures);
  const n = `${SUBSCRIBERS}x${fan.events}`;
  const note = `GET /v1/operations/{id}/events; receipt minus the event's \`at\` (ms-truncated: +0..1 ms)`;
  rows.push(
    { label: `SSE fan-out to ${SUBSCRIBERS}, event delay p50`, n, value: percentile(fan.delays, 50), unit: 'ms', note },
    { label: `SSE fan-out to ${SUBSCRIBERS}, event delay p95`, n, value: percentile(fan.delays, 95), unit: 'ms' },
  );
}

const rd = await part('reads', 'reads', reads);
if (rd) {
  failures.push(...rd.failures);
  const note = `autocannon, ${CONNECTIONS} connections, ${SECONDS} s`;
  rows.push(
    {
      label: 'GET /instances/{id}, throughput',
      n: String(rd.one.requests.total),
      value: rd.one.requests.average,
      unit: 'req/s',
      note,
    },
    {
      label: 'GET /instances/{id}, latency p99',
      n: String(rd.one.requests.total),
      value: rd.one.latency.p99,
      unit: 'ms',
    },
    {
      label: `GET /instances (${READ_INSTANCES}), throughput`,
      n: String(rd.list.requests.total),
      value: rd.list.requests.average,
      unit: 'req/s',
      note,
    },
    {
      label: `GET /instances (${READ_INSTANCES}), latency p99`,
      n: String(rd.list.requests.total),
      value: rd.list.latency.p99,
      unit: 'ms',
    },
  );
}

await cleanup();
const loadAfter = await uptime();
process.stdout.write(`\n${renderTable(rows)}\n\n`);
process.stdout.write(`load before: ${loadBefore}\nload after:  ${loadAfter}\n`);
process.stdout.write(`${new Date().toISOString()}, ${((performance.now() - started) / 1000).toFixed(0)} s in all\n`);
if (failures.length) {
  process.stdout.write(`\nFAILED (${failures.length}):\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
  process.exit(1);
}
process.exit(0);
