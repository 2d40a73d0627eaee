import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageCatalogue, INSTALL_STAGES } from '@vmplane/core';
import type { Simulator, SimulatorOptions } from '@vmplane/proxmox-sim';
import { startSimulator } from '@vmplane/proxmox-sim';
import { type StartedServer, startServer } from '../../src/index.js';
import { sseFrames } from './harness.js';

/** A prefix unique to this run, for everything a test names on a backend. */
export const PREFIX = `e2e${randomBytes(3).toString('hex')}`;

export const GATEWAY = '127.77.0.1';

/** A qcow2 header (64 KiB clusters, 2 GiB virtual) padded to 256 KiB: what the simulator checks. */
export function tinyQcow2(seed = 1): Buffer {
  const buf = Buffer.alloc(256 * 1024);
  let x = seed;
  for (let i = 0; i < buf.length; i++) {
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

export interface Mirror {
  /** `http://127.0.0.1:<port>`: the mirrors are `<url>/debian`, `<url>/ubuntu`, `<url>/rocky`. */
  url: string;
  mirrors: { debian: string; ubuntu: string; rocky: string };
  close(): Promise<void>;
}

/** A loopback mirror serving every catalogue image (a tiny qcow2) and its checksum file, official layout. */
export async function startMirror(): Promise<Mirror> {
  const files = new Map<string, Buffer>();
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
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mirrors = { debian: `${url}/debian`, ubuntu: `${url}/ubuntu`, rocky: `${url}/rocky` };
  const catalogue = new ImageCatalogue({ mirrors });
  const body = tinyQcow2();
  for (const name of ['debian-11', 'debian-12', 'debian-13', 'ubuntu-22.04', 'ubuntu-24.04', 'rocky-9']) {
    const image = catalogue.get(name);
    files.set(new URL(image.url).pathname, body);
    const hex = createHash(image.checksumAlgorithm).update(body).digest('hex');
    files.set(
      new URL(image.checksumUrl).pathname,
      Buffer.from(image.checksumFormat === 'bsd' ? `SHA256 (${image.file}) = ${hex}\n` : `${hex}  ${image.file}\n`),
    );
  }
  return {
    url,
    mirrors,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Commands the OS init runs that the simulator's shell does not know: answered 0. */
const SCRIPTED = /apt-get|dnf |hostnamectl|useradd|usermod|getent|authorized_keys/;

/** A port for guests' SSH of this file alone: test files run side by side on 127.77.0.<vmid>. */
export function guestSshPort(): number {
  return 20_000 + Math.floor(Math.random() * 20_000);
}

export async function startSim(opts: SimulatorOptions = {}): Promise<Simulator> {
  return startSimulator({
    nodes: 1,
    guests: 0,
    taskDuration: 20,
    bootDelayMs: 50,
    guestExec: async (req) => (SCRIPTED.test(req.command) ? { exitcode: 0, stdout: '' } : undefined),
    ...opts,
  });
}

/** A config file pointing a Proxmox provider at the simulator and the catalogue at the mirror. */
export async function simConfig(
  dir: string,
  sim: Simulator,
  mirror: Mirror,
  sshPort: number,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const file = join(dir, 'config.json');
  const config = {
    defaultProvider: 'pve',
    providers: {
      pve: {
        type: 'proxmox',
        url: sim.url,
        tokenId: sim.credentials.tokenId,
        tokenSecret: sim.credentials.tokenSecret,
        storage: 'local',
        imageStorage: 'local',
        sshPort,
      },
    },
    gopveqemu: { GATEWAY, ASSIGN_IP_START: 100, ASSIGN_IP_END: 254 },
    images: { mirrors: mirror.mirrors },
    reconcileIntervalMs: 500,
    ...extra,
  };
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

export interface Running {
  server: StartedServer;
  dir: string;
  token: string;
  auth(): Record<string, string>;
  close(): Promise<void>;
}

/** startServer on a free loopback port in a fresh data directory, with a write token. */
export async function serve(configFor: (dir: string) => Promise<string>): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), `vmplane-${PREFIX}-`));
  const configPath = await configFor(dir);
  const server = await startServer({
    dataDir: join(dir, 'data'),
    configPath,
    port: 0,
    print: false,
    handleSignals: false,
    logger: false,
    env: {},
    cwd: dir,
  });
  const { token } = await server.store.tokens.create({ scope: 'write', name: PREFIX });
  return {
    server,
    dir,
    token,
    auth: () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' }),
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface GpqEvent {
  id: number;
  step: string;
  status: string;
  message: string;
  vm_id?: number;
  ip?: string;
}

/** go-pve-qemu's stream: every event (with its id), and whether it ended with `event: close`. */
export function parseGpq(body: string): { events: GpqEvent[]; closed: boolean } {
  const frames = sseFrames(body).filter((f) => f.comment === undefined);
  const closed = frames.at(-1)?.event === 'close';
  const events = frames
    .filter((f) => f.event === undefined && f.data !== undefined)
    .map((f) => ({ id: Number(f.id), ...(JSON.parse(f.data ?? '{}') as Omit<GpqEvent, 'id'>) }));
  return { events, closed };
}

/** POST /api/vm/install over the socket; resolves with the whole stream. */
export async function install(
  r: Running,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; opId: string | null; events: GpqEvent[]; closed: boolean; text: string }> {
  const res = await fetch(`${r.server.url}/api/vm/install`, {
    method: 'POST',
    headers: { ...r.auth(), ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = res.headers.get('content-type')?.startsWith('text/event-stream')
    ? parseGpq(text)
    : { events: [], closed: false };
  return { status: res.status, opId: res.headers.get('x-operation-id'), text, ...parsed };
}

/** The distinct stage names of a stream, in the order they first appear. */
export function stagesOf(events: readonly GpqEvent[]): string[] {
  return [...new Set(events.map((e) => e.step).filter((s) => s !== ''))];
}

/** Calls the simulator's PVE API with its token. */
export async function pve(sim: Simulator, method: string, path: string, params?: Record<string, string>) {
  const init: RequestInit = { method, headers: { Authorization: sim.credentials.tokenHeader } };
  if (params) init.body = new URLSearchParams(params);
  const res = await fetch(`${sim.apiUrl}${path}`, init);
  const json = (await res.json().catch(() => ({}))) as { data?: unknown };
  return { status: res.status, data: json.data };
}

/** Waits (bounded) for a PVE task to end; its exitstatus. */
export async function pveTask(sim: Simulator, upid: unknown, node = 'pve1'): Promise<string | undefined> {
  for (let i = 0; i < 500; i++) {
    const t = (await pve(sim, 'GET', `/nodes/${node}/tasks/${encodeURIComponent(String(upid))}/status`)).data as {
      status: string;
      exitstatus?: string;
    };
    if (t.status === 'stopped') return t.exitstatus;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`task ${String(upid)} did not end`);
}

/** The simulator's VMIDs (QEMU and LXC), from cluster/resources. */
export async function simVmids(sim: Simulator): Promise<number[]> {
  const { data } = await pve(sim, 'GET', '/cluster/resources?type=vm');
  return ((data as Array<{ vmid: number }>) ?? []).map((r) => r.vmid).sort((a, b) => a - b);
}

/** The volumes on local storage with content `import` (downloaded images). */
export async function simImages(sim: Simulator): Promise<string[]> {
  const { data } = await pve(sim, 'GET', '/nodes/pve1/storage/local/content?content=import');
  return ((data as Array<{ volid: string }>) ?? []).map((v) => v.volid);
}

/** Polls `check` until it answers true, at most `ms` (default 10 s). */
export async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

/**
 * go-pve-qemu's stages, every one in its order, each opening with `processing` and ending in
 * `success`. A stage may end under go-pve-qemu's other name for it: "using OS image" when the
 * image is there already, "creating SSH key" the first time; that name comes right after.
 */
export function assertEveryStage(events: readonly GpqEvent[]): void {
  const renamed: Record<string, string> = {
    'OS preparation > using OS image': 'OS preparation > downloading OS image',
    'SSH preparation > creating SSH key': 'SSH preparation > checking SSH key',
  };
  const stages = stagesOf(events);
  assert.deepEqual(
    stages.filter((s) => !(s in renamed)),
    [...INSTALL_STAGES],
    'every stage, in go-pve-qemu order',
  );
  for (const [other, base] of Object.entries(renamed)) {
    const i = stages.indexOf(other);
    if (i >= 0) assert.equal(stages[i - 1], base, `${other} comes right after ${base}`);
  }
  for (const stage of INSTALL_STAGES) {
    assert.equal(events.find((e) => e.step === stage)?.status, 'processing', `${stage} opens`);
    const endedAs = Object.entries(renamed).find(([, base]) => base === stage)?.[0];
    assert.ok(
      events.some((e) => (e.step === stage || e.step === endedAs) && e.status === 'success'),
      `${stage} succeeded (or was skipped)`,
    );
  }
  assert.ok(!events.some((e) => e.status === 'error'), 'no error event');
}
