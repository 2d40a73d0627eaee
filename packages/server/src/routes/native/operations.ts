import type { OperationRecord, OperationStatus } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../../server.js';
import { lastEventId, SseStream } from '../../sse.js';
import type { RouteAccess } from '../../types.js';

const READ: { access: RouteAccess } = { access: { scope: 'read', flavour: 'hypeman' } };
const WRITE: { access: RouteAccess } = { access: { scope: 'write', flavour: 'hypeman' } };
const TAGS = ['vmplane'];
const opParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$' } },
} as const;
const STATUSES: OperationStatus[] = ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'];

/** An operation as the API shows it: the record (its request is journal-safe already), snake_case. */
export function wireOperation(op: OperationRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: op.id,
    kind: op.kind,
    status: op.status,
    instance_id: op.instanceId ?? null,
    provider: op.provider ?? null,
    request: op.request,
    cancel_requested: op.cancelRequested,
    created_at: op.createdAt,
    updated_at: op.updatedAt,
    ended_at: op.endedAt ?? null,
  };
  if (op.error) out.error = op.error;
  if (op.result) out.result = op.result;
  return out;
}

export function nativeOperationRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { plane } = deps;

  app.get<{ Querystring: { status?: OperationStatus; instance_id?: string; limit?: number } }>(
    '/v1/operations',
    {
      config: READ,
      schema: {
        tags: TAGS,
        querystring: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: STATUSES },
            instance_id: { type: 'string', maxLength: 128 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
      },
    },
    async (request) => {
      const filter: Parameters<typeof plane.listOperations>[0] = {};
      if (request.query.status) filter.status = request.query.status;
      if (request.query.instance_id) filter.instanceId = request.query.instance_id;
      if (request.query.limit) filter.limit = request.query.limit;
      return (await plane.listOperations(filter)).map(wireOperation);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/operations/:id',
    { config: READ, schema: { tags: TAGS, params: opParams } },
    async (request) => wireOperation(await plane.getOperation(request.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/operations/:id/cancel',
    { config: WRITE, schema: { tags: TAGS, params: opParams, summary: 'Cancel; the operation undoes what it did' } },
    async (request) => wireOperation(await plane.cancelOperation(request.params.id)),
  );

  app.get<{ Params: { id: string }; Querystring: { last_event_id?: string; follow?: boolean } }>(
    '/v1/operations/:id/events',
    {
      config: READ,
      schema: {
        tags: TAGS,
        params: opParams,
        summary: 'The journal, then live events until the operation ends (SSE; Last-Event-ID resumes)',
        querystring: {
          type: 'object',
          properties: { last_event_id: { type: 'string', maxLength: 20 }, follow: { type: 'boolean', default: true } },
        },
      },
    },
    async (request, reply) => {
      // The operation is looked up first, so a wrong id is a 404, not an empty stream.
      await plane.getOperation(request.params.id);
      const sse = new SseStream(request, reply, { heartbeatMs: deps.heartbeatMs });
      try {
        const events = plane.operationEvents(request.params.id, {
          afterSeq: lastEventId(request, request.query),
          signal: sse.signal,
          follow: request.query.follow !== false,
        });
        for await (const e of events) {
          if (sse.closed) break;
          const data: Record<string, unknown> = {
            seq: e.seq,
            operation_id: e.operationId,
            step: e.step,
            status: e.status,
            message: e.message,
            at: e.at,
          };
          if (e.elapsed !== undefined) data.elapsed = e.elapsed;
          if (e.vmId !== undefined) data.vm_id = e.vmId;
          if (e.ip !== undefined) data.ip = e.ip;
          sse.send(data, { id: e.seq, event: 'stage' });
        }
        if (!sse.closed) sse.send(wireOperation(await plane.getOperation(request.params.id)), { event: 'end' });
      } catch (error) {
        if (!sse.closed) sse.send({ code: 'internal_error', message: (error as Error).message }, { event: 'error' });
      }
      sse.end();
    },
  );
}
