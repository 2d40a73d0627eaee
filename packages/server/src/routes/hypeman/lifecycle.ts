import type { InstanceState, LifecycleAction } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../errors.js';
import { requireSuccess } from '../../ops.js';
import type { RouteDeps } from '../../server.js';
import { idParams, TAGS, WRITE, wireInstance } from './common.js';

const startBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    entrypoint: { type: 'array', items: { type: 'string', maxLength: 4096 } },
    cmd: { type: 'array', items: { type: 'string', maxLength: 4096 } },
  },
} as const;

const standbyBody = {
  type: 'object',
  additionalProperties: false,
  properties: { compression: { type: 'object' }, compression_delay: { type: 'string', maxLength: 32 } },
} as const;

const forkBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$', maxLength: 63 },
    from_running: { type: 'boolean' },
    target_state: { type: 'string', enum: ['Stopped', 'Standby', 'Running'] },
  },
} as const;

const snapshotBody = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { type: 'string', enum: ['Standby', 'Stopped'] },
    name: { type: 'string', maxLength: 63, pattern: '^[A-Za-z0-9]([A-Za-z0-9_.-]*)$' },
    tags: { type: 'object' },
    compression: { type: 'object' },
  },
} as const;

const snapshotParams = {
  type: 'object',
  required: ['id', 'snapshotId'],
  properties: {
    ...idParams.properties,
    snapshotId: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
  },
} as const;

/**
 * hypeman's lifecycle POSTs. Each runs as an operation and answers once it has ended, with the
 * instance as the store then holds it (start answers Initializing: the guest's readiness is not
 * waited for, as in hypeman; `/wait` is how a client waits for Running).
 */
export function hypemanLifecycleRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { plane } = deps;

  const action = (path: string, act: LifecycleAction, body: Record<string, unknown> | undefined) =>
    app.post<{ Params: { id: string } }>(
      `/instances/:id/${path}`,
      { config: WRITE, schema: { tags: TAGS, params: idParams, ...(body ? { body } : {}) } },
      async (request) => {
        const instance = await plane.getInstance(request.params.id);
        const started = await plane.act(instance.id, act, { waitReady: false });
        await requireSuccess(plane, started.operation.id, `${act} instance`);
        return wireInstance(await plane.getInstance(instance.id));
      },
    );
  action('start', 'start', startBody);
  action('stop', 'stop', undefined);
  action('standby', 'standby', standbyBody);
  action('restore', 'restore', undefined);

  // hypeman's fork: 201 with the new instance.
  app.post<{ Params: { id: string }; Body: { name: string; from_running?: boolean; target_state?: InstanceState } }>(
    '/instances/:id/fork',
    { config: WRITE, schema: { tags: TAGS, params: idParams, body: forkBody } },
    async (request, reply) => {
      const req: Parameters<typeof plane.fork>[1] = { name: request.body.name };
      if (request.body.from_running !== undefined) req.fromRunning = request.body.from_running;
      if (request.body.target_state !== undefined) req.targetState = request.body.target_state;
      const { instance } = await plane.fork(request.params.id, req);
      return reply.code(201).send(wireInstance(instance));
    },
  );

  // hypeman's snapshots. A `Standby` snapshot keeps memory (LXD stateful, Proxmox vmstate) and needs
  // a Running or Standby source; a `Stopped` one needs a Stopped source. The snapshot's id is its
  // name, unique per instance, as the backends keep them.
  app.post<{ Params: { id: string }; Body: { kind: 'Standby' | 'Stopped'; name?: string } }>(
    '/instances/:id/snapshots',
    { config: WRITE, schema: { tags: TAGS, params: idParams, body: snapshotBody } },
    async (request, reply) => {
      const instance = await plane.getInstance(request.params.id);
      const { kind } = request.body;
      const allowed = kind === 'Standby' ? ['Running', 'Standby'] : ['Stopped'];
      if (!allowed.includes(instance.state))
        throw new HttpError(
          409,
          'conflict',
          kind === 'Standby'
            ? `invalid state transition: standby snapshot requires source in Running or Standby, got ${instance.state}`
            : `invalid state transition: stopped snapshot requires source in Stopped, got ${instance.state}`,
        );
      const name = request.body.name ?? `snap-${Date.now().toString(36)}`;
      const started = await plane.snapshot(instance.id, 'create', name, { stateful: kind === 'Standby' });
      const op = await requireSuccess(plane, started.operation.id, 'snapshot');
      return reply.code(201).send({
        id: name,
        name,
        kind,
        tags: {},
        source_instance_id: instance.id,
        source_instance_name: instance.name,
        source_hypervisor: instance.hypervisor ?? (instance.ref.type === 'proxmox' ? 'qemu' : 'lxc'),
        created_at: op.endedAt ?? op.createdAt,
        size_bytes: 0,
      });
    },
  );
  app.post<{ Params: { id: string; snapshotId: string } }>(
    '/instances/:id/snapshots/:snapshotId/restore',
    { config: WRITE, schema: { tags: TAGS, params: snapshotParams, body: { type: 'object' } } },
    async (request) => {
      const instance = await plane.getInstance(request.params.id);
      const started = await plane.snapshot(instance.id, 'restore', request.params.snapshotId);
      await requireSuccess(plane, started.operation.id, 'restore snapshot');
      return wireInstance(await plane.getInstance(instance.id));
    },
  );
}
