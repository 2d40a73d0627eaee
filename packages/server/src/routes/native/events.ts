import type { BusMessage } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../../server.js';
import { SseStream } from '../../sse.js';
import { wireInstance } from '../hypeman/common.js';
import { wireOperation } from './operations.js';

/** Bytes a slow reader may have queued before it is cut off (it can read the journal again). */
const MAX_BUFFERED = 8 * 1024 * 1024;

/**
 * `/v1/events`: every operation event and instance change, live, as SSE. Ids count per stream
 * (the bus is not durable); a reader that reconnects reads what it missed from `/v1/operations`.
 */
export function nativeEventRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get(
    '/v1/events',
    { config: { access: { scope: 'read', flavour: 'hypeman' } }, schema: { tags: ['vmplane'] } },
    async (request, reply) => {
      const sse = new SseStream(request, reply, { heartbeatMs: deps.heartbeatMs });
      let n = 0;
      const unsubscribe = deps.plane.subscribe((m: BusMessage) => {
        if (sse.closed) return;
        if (sse.buffered > MAX_BUFFERED) {
          sse.end();
          return;
        }
        sse.send(payload(m), { id: ++n, event: m.type });
      });
      await new Promise<void>((resolve) => sse.signal.addEventListener('abort', () => resolve(), { once: true }));
      unsubscribe();
    },
  );
}

function payload(m: BusMessage): unknown {
  switch (m.type) {
    case 'operation-event':
      return {
        seq: m.event.seq,
        operation_id: m.event.operationId,
        step: m.event.step,
        status: m.event.status,
        message: m.event.message,
        at: m.event.at,
        ...(m.event.vmId !== undefined ? { vm_id: m.event.vmId } : {}),
        ...(m.event.ip !== undefined ? { ip: m.event.ip } : {}),
      };
    case 'operation':
      return wireOperation(m.operation);
    case 'instance':
    case 'instance-deleted':
      return wireInstance(m.instance);
  }
}
