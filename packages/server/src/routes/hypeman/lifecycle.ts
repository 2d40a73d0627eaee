import type { LifecycleAction } from '@vmplane/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
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

  // The plane has no fork or snapshot operations yet: the routes exist, with their schemas, and
  // answer hypeman's 501 `not_supported` once the instance is found.
  const unsupported = (what: string) => async (request: FastifyRequest) => {
    const instance = await plane.getInstance((request.params as { id: string }).id);
    throw new HttpError(
      501,
      'not_supported',
      `provider ${instance.provider} does not support ${what} through this server`,
    );
  };
  app.post(
    '/instances/:id/fork',
    { config: WRITE, schema: { tags: TAGS, params: idParams, body: forkBody } },
    unsupported('fork'),
  );
  app.post(
    '/instances/:id/snapshots',
    { config: WRITE, schema: { tags: TAGS, params: idParams, body: snapshotBody } },
    unsupported('snapshots'),
  );
  app.post(
    '/instances/:id/snapshots/:snapshotId/restore',
    { config: WRITE, schema: { tags: TAGS, params: snapshotParams, body: { type: 'object' } } },
    unsupported('snapshot-restore'),
  );
}
