import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ControlPlane, type InstallAllocator, openStore, type SqlStore } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/index.js';
import type { ServerConfig } from '../../src/types.js';
import { FakeProvider } from './fake-provider.js';

export interface Harness {
  app: FastifyInstance;
  plane: ControlPlane;
  store: SqlStore;
  provider: FakeProvider;
  tokens: { read: string; write: string; admin: string };
  /** Every log line the server wrote. */
  logs: string[];
  auth(scope?: 'read' | 'write' | 'admin'): { authorization: string };
  close(): Promise<void>;
}

/** A real ControlPlane and SQLite store over a fake provider, with the server in process. */
export async function harness(config: ServerConfig = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'vmplane-server-test-'));
  const store = await openStore({ dataDir: dir });
  const provider = new FakeProvider();
  const plane = new ControlPlane({
    store,
    providers: [provider],
    allocator: idAllocator(store),
    reconcileIntervalMs: 60_000,
  });
  await plane.start();
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const app = await buildServer({
    plane,
    store,
    config: { heartbeatMs: 50, providerTypes: { fake: 'lxd' }, logger: { level: 'debug', stream }, ...config },
  });
  const tokens = {
    read: (await store.tokens.create({ scope: 'read', name: 'r' })).token,
    write: (await store.tokens.create({ scope: 'write', name: 'w' })).token,
    admin: (await store.tokens.create({ scope: 'admin', name: 'a' })).token,
  };
  return {
    app,
    plane,
    store,
    provider,
    tokens,
    logs,
    auth: (scope = 'write') => ({ authorization: `Bearer ${tokens[scope]}` }),
    async close() {
      await app.close();
      await plane.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The events of an SSE body: each frame's fields. */
export function sseFrames(body: string): Array<{ id?: string; event?: string; data?: string; comment?: string }> {
  return body
    .split('\n\n')
    .filter((f) => f.trim() !== '')
    .map((frame) => {
      const out: { id?: string; event?: string; data?: string; comment?: string } = {};
      for (const line of frame.split('\n')) {
        if (line.startsWith(':')) out.comment = line.slice(1).trim();
        else if (line.startsWith('id: ')) out.id = line.slice(4);
        else if (line.startsWith('event: ')) out.event = line.slice(7);
        else if (line.startsWith('data: ')) out.data = line.slice(6);
      }
      return out;
    });
}

/** Numeric ids 100..254 from the store's `id` pool, with go-pve-qemu's loopback addresses. */
function idAllocator(store: SqlStore): InstallAllocator {
  return {
    async reserve(owner, req) {
      if (req.requestedId !== undefined) {
        const ok = await store.allocations.claim({ pool: 'id', owner, value: String(req.requestedId) });
        if (!ok) throw new Error(`id ${req.requestedId} is taken`);
        return { vmid: req.requestedId, ipv4: `127.77.0.${req.requestedId}` };
      }
      const candidates = Array.from({ length: 155 }, (_, i) => String(100 + i));
      const got = await store.allocations.allocate({ pool: 'id', owner, candidates });
      if (!got) throw new Error('no id left');
      return { vmid: Number(got.value), ipv4: `127.77.0.${got.value}` };
    },
    async release(owner) {
      await store.allocations.releaseOwner(owner);
    },
  };
}
