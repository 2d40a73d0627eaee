import type { Instance, LifecycleAction } from '@vmplane/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendError, toErrorBody } from '../../errors.js';
import { requireSuccess } from '../../ops.js';
import type { RouteDeps } from '../../server.js';
import { checkRunning, findByVmid, isRunning, parseVmid, READ, streamOperation, vmidIndex, WRITE } from './common.js';

const GIB = 1024 ** 3;
const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;
const TAGS = ['go-pve-qemu'];

function bodySchema(field: string, schema: Record<string, unknown>) {
  return { type: 'object', additionalProperties: false, required: [field], properties: { [field]: schema } };
}

/** go-pve-qemu's text answers to a bad body: `invalid request body: <why>` (400, no newline). */
function badBody(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const v = (error as { validation?: unknown; message?: string }) ?? {};
  if (v.validation || (error as { statusCode?: number }).statusCode === 400) {
    const body = toErrorBody(error);
    return reply.code(400).type('text/plain; charset=utf-8').send(`invalid request body: ${body.message}`);
  }
  return sendError(request, reply, error);
}

export function goPveQemuVmRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { plane } = deps;

  app.get(
    '/api/health',
    { config: { access: { scope: 'none', flavour: 'gopveqemu' } }, schema: { tags: TAGS } },
    async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'),
  );

  app.get<{ Querystring: { disable?: string } }>(
    '/api/vm/list',
    {
      config: READ,
      schema: {
        tags: TAGS,
        summary:
          "VMs and nodes: go-pve-qemu's code's keys (cluster, count, data, list) and its documentation's (success, vms, nodes)",
        querystring: { type: 'object', properties: { disable: { type: 'string', maxLength: 8 } } },
      },
    },
    async (request) => {
      const instances = await plane.listInstances();
      const disable = request.query.disable;
      const kept = instances.filter((i) => (disable === '1' ? !isRunning(i) : disable === '0' ? isRunning(i) : true));
      const vmidOf = await vmidIndex(deps);
      const vms = kept
        .map((i) => listedVm(i, vmidOf(i)))
        .filter((v) => v.vmid !== undefined)
        .sort((a, b) => (a.vmid ?? 0) - (b.vmid ?? 0));
      const nodes = await nodeFigures(deps, kept);
      return { success: true, vms, nodes, cluster: nodes, count: vms.length, data: vms, list: vms };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/vm/:id/status',
    { config: READ, schema: { tags: TAGS, params: idParams } },
    async (request, reply) => {
      if (!/^\d{1,9}$/.test(request.params.id)) return reply.code(400).send({ error: 'invalid VM ID' });
      const instance = await findByVmid(deps, Number(request.params.id));
      return reply.type('text/plain; charset=utf-8').send(isRunning(instance) ? 'running' : 'stopped');
    },
  );

  /** SSE lifecycle routes: start and reboot stream until the guest is ready. */
  const streamed = (path: string, action: LifecycleAction, must: 'running' | 'stopped', badId: string) =>
    app.post<{ Params: { id: string } }>(
      `/api/vm/:id/${path}`,
      { config: WRITE, schema: { tags: TAGS, params: idParams, summary: `${action} (SSE until ready)` } },
      async (request, reply) => {
        const instance = await findByVmid(deps, parseVmid(request.params.id, badId));
        checkRunning(instance, must);
        const started = await plane.act(instance.id, action, { waitReady: true });
        await streamOperation(request, reply, deps, started.operation);
      },
    );
  streamed('start', 'start', 'stopped', '[-] failed to start VM');
  streamed('reboot', 'reboot', 'running', '[-] failed to reboot VM');

  /** Plain-text lifecycle routes: `ok` once the operation has succeeded. */
  const plain = (
    path: string,
    action: LifecycleAction,
    must: 'running' | 'stopped' | undefined,
    what: string,
    opts?: { force?: boolean },
  ) =>
    app.post<{ Params: { id: string } }>(
      `/api/vm/:id/${path}`,
      { config: WRITE, schema: { tags: TAGS, params: idParams } },
      async (request, reply) => {
        const instance = await findByVmid(deps, parseVmid(request.params.id, `failed to ${what}\n`));
        if (must) checkRunning(instance, must);
        const started = await plane.act(instance.id, action, opts);
        await requireSuccess(plane, started.operation.id, what);
        return reply.type('text/plain; charset=utf-8').send('ok');
      },
    );
  // stop is `qm stop --skiplock`: at once, no guest shutdown.
  plain('stop', 'stop', 'running', 'stop VM', { force: true });
  plain('shutdown', 'shutdown', 'running', 'shutdown VM');
  // destroy stops first, then deletes with purge, whatever the state (the rule).
  plain('destroy', 'destroy', undefined, 'destroy VM', { force: true });

  const resize = <B>(
    path: string,
    field: string,
    schema: Record<string, unknown>,
    what: string,
    change: (body: B) => Parameters<typeof plane.resize>[1],
  ) =>
    app.post<{ Params: { id: string }; Body: B }>(
      `/api/vm/:id/set/${path}`,
      {
        config: WRITE,
        schema: { tags: TAGS, params: idParams, body: bodySchema(field, schema) },
        errorHandler: (error, request, reply) => badBody(request, reply, error),
      },
      async (request, reply) => {
        const instance = await findByVmid(deps, parseVmid(request.params.id, `failed to ${what}\n`));
        checkRunning(instance, 'stopped');
        const started = await plane.resize(instance.id, change(request.body as B));
        await requireSuccess(plane, started.operation.id, what);
        return reply.type('text/plain; charset=utf-8').send('ok');
      },
    );
  resize<{ cpu: number }>('cpu', 'cpu', { type: 'integer', minimum: 1, maximum: 32 }, 'edit CPU', (b) => ({
    vcpus: b.cpu,
  }));
  resize<{ memory: number }>(
    'memory',
    'memory',
    { type: 'integer', minimum: 512, maximum: 32768 },
    'edit memory',
    (b) => ({ memoryMiB: b.memory }),
  );
  // Grows by that much (`qm disk resize +N`); a size that would shrink cannot be written.
  resize<{ disk: string }>('disk', 'disk', { type: 'string', pattern: '^[1-9][0-9]{0,5}G?$' }, 'append disk', (b) => ({
    growDiskGiB: Number.parseInt(b.disk, 10),
  }));

  app.post<{ Params: { id: string }; Body: { node: string } }>(
    '/api/vm/:id/set/node',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        params: idParams,
        summary: 'Migrate, with local disks (SSE)',
        body: bodySchema('node', { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$' }),
      },
      errorHandler: (error, request, reply) => badBody(request, reply, error),
    },
    async (request, reply) => {
      const instance = await findByVmid(deps, parseVmid(request.params.id, '[-] failed to migrate VM'));
      checkRunning(instance, 'stopped');
      const started = await plane.resize(instance.id, { node: request.body.node });
      await streamOperation(request, reply, deps, started.operation);
    },
  );
}

interface ListedVm {
  vmid: number | undefined;
  name: string;
  os: string;
  running: boolean;
  node: string;
  cpu: number;
  disk: number;
  memory: number;
  memory_used: number;
}

function memoryBytes(size: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(size ?? '');
  if (!m) return 0;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1;
  return Number(m[1]) * unit;
}

/** One VM as go-pve-qemu lists it (GiB truncated, `os` from the tags). */
function listedVm(i: Instance, vmid: number | undefined): ListedVm {
  return {
    vmid,
    name: i.name,
    os: i.tags.os ?? i.image,
    running: isRunning(i),
    node: i.ref.type === 'proxmox' ? i.ref.node : i.provider,
    cpu: i.vcpus ?? 0,
    disk: 0,
    memory: Math.trunc(memoryBytes(i.size) / GIB),
    memory_used: 0,
  };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Per node: cores and memory, with the share the listed VMs hold (0 rather than NaN when unknown). */
async function nodeFigures(deps: RouteDeps, kept: Instance[]) {
  let nodes: Awaited<ReturnType<RouteDeps['plane']['nodes']>> = [];
  try {
    nodes = await deps.plane.nodes();
  } catch {
    nodes = [];
  }
  return nodes
    .map((n) => {
      const mine = kept.filter((i) => (i.ref.type === 'proxmox' ? i.ref.node === n.name : i.provider === n.provider));
      const cpus = n.cpus ?? 0;
      const mem = n.memoryBytes ?? 0;
      const vmCpu = mine.reduce((s, i) => s + (i.vcpus ?? 0), 0);
      const vmMem = mine.reduce((s, i) => s + memoryBytes(i.size), 0);
      return {
        node: n.name,
        max_cpu: Math.round(cpus),
        max_memory: round2(mem / GIB),
        cpu: cpus > 0 ? round2((vmCpu / cpus) * 100) : 0,
        memory: mem > 0 ? round2((vmMem / mem) * 100) : 0,
        memory_used: mem > 0 ? round2(((n.memoryUsedBytes ?? 0) / mem) * 100) : 0,
        disk: round2((n.diskBytes ?? 0) / GIB),
        running: n.online,
      };
    })
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}
