import { assertCanDo, type InstanceState, type OperationEvent } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../errors.js';
import type { RouteDeps } from '../../server.js';
import { SseStream } from '../../sse.js';
import { formatBytes, idParams, parseGoDuration, READ, stateSchema, TAGS } from './common.js';

const WAIT_DEFAULT_MS = 60_000;
const WAIT_CAP_MS = 5 * 60_000;

/** One journal line of the `hypeman` log source. */
function journalLine(event: OperationEvent): string {
  return `${event.at} ${event.step ? `${event.step}: ` : ''}${event.message}`;
}

export function hypemanLogRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { plane } = deps;

  app.get<{
    Params: { id: string };
    Querystring: { tail: number; follow: boolean; source: 'app' | 'vmm' | 'hypeman' };
  }>(
    '/instances/:id/logs',
    {
      config: READ,
      schema: {
        tags: TAGS,
        params: idParams,
        querystring: {
          type: 'object',
          properties: {
            tail: { type: 'integer', minimum: 0, maximum: 100_000, default: 100 },
            follow: { type: 'boolean', default: false },
            source: { type: 'string', enum: ['app', 'vmm', 'hypeman'], default: 'app' },
          },
        },
      },
    },
    async (request, reply) => {
      const instance = await plane.getInstance(request.params.id);
      const { tail, follow, source } = request.query;
      if (source === 'vmm')
        throw new HttpError(404, 'log_not_found', 'vmplane keeps no hypervisor log: use source=app or source=hypeman');
      // Each line is `data: <JSON string>`, as the SDK JSON-parses every event.
      const sse = new SseStream(request, reply, follow ? { heartbeatMs: deps.heartbeatMs } : {});
      try {
        if (source === 'hypeman') {
          // Live events are taken from the bus from now on, and the journal read after: an event
          // in both is sent once (by operation and seq).
          const sent = new Set<string>();
          const live: OperationEvent[] = [];
          let wake: (() => void) | undefined;
          const mine = new Set<string>();
          const unsubscribe = follow
            ? plane.subscribe((m) => {
                if (m.type === 'operation' && m.operation.instanceId === instance.id) mine.add(m.operation.id);
                if (m.type === 'operation-event' && mine.has(m.event.operationId)) {
                  live.push(m.event);
                  wake?.();
                }
              })
            : () => {};
          try {
            const ops = (await plane.listOperations({ instanceId: instance.id, limit: 1000 })).sort((a, b) =>
              a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0,
            );
            const lines: string[] = [];
            for (const op of ops) {
              mine.add(op.id);
              for await (const e of plane.operationEvents(op.id, { follow: false })) {
                sent.add(`${e.operationId}:${e.seq}`);
                lines.push(journalLine(e));
              }
            }
            for (const line of tail > 0 ? lines.slice(-tail) : []) sse.send(line);
            while (follow && !sse.closed) {
              const e = live.shift();
              if (!e) {
                await new Promise<void>((resolve) => {
                  wake = resolve;
                  sse.signal.addEventListener('abort', () => resolve(), { once: true });
                });
                wake = undefined;
                continue;
              }
              const key = `${e.operationId}:${e.seq}`;
              if (sent.has(key)) continue;
              sent.add(key);
              sse.send(journalLine(e));
            }
          } finally {
            unsubscribe();
          }
        } else {
          const lines: string[] = [];
          let total = 0;
          for await (const line of plane.consoleLog(instance.id, { signal: sse.signal, follow: false })) {
            total++;
            lines.push(line);
            if (lines.length > tail) lines.shift();
          }
          for (const line of tail > 0 ? lines : []) sse.send(line);
          if (follow && !sse.closed) {
            // The follow stream starts again from the console's beginning: what was read is skipped.
            let seen = 0;
            for await (const line of plane.consoleLog(instance.id, { signal: sse.signal, follow: true })) {
              if (seen++ < total) continue;
              sse.send(line);
            }
          }
        }
      } catch (error) {
        if (!sse.closed) request.log.warn({ err: { message: (error as Error).message } }, 'log stream ended');
      }
      sse.end();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { path: string; follow_links: boolean } }>(
    '/instances/:id/stat',
    {
      config: READ,
      schema: {
        tags: TAGS,
        params: idParams,
        querystring: {
          type: 'object',
          required: ['path'],
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/[^\\u0000]*$' },
            follow_links: { type: 'boolean', default: false },
          },
        },
      },
    },
    async (request) => {
      const instance = await plane.getInstance(request.params.id);
      assertCanDo('exec', instance.state);
      const info = await plane.stat(instance.id, request.query.path);
      return {
        exists: info.exists,
        is_dir: info.is_dir ?? false,
        is_file: info.is_file ?? false,
        is_symlink: info.is_symlink ?? false,
        link_target: info.link_target ?? '',
        mode: info.mode ?? 0,
        size: info.size ?? 0,
        error: info.error ?? null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/instances/:id/stats',
    { config: READ, schema: { tags: TAGS, params: idParams } },
    async (request) => {
      const instance = await plane.getInstance(request.params.id);
      const s = await plane.stats(instance.id);
      return {
        instance_id: instance.id,
        instance_name: instance.name,
        cpu_seconds: s.cpuSeconds,
        memory_rss_bytes: s.memoryRssBytes,
        memory_vms_bytes: s.memoryVmsBytes,
        network_rx_bytes: s.networkRxBytes,
        network_tx_bytes: s.networkTxBytes,
        allocated_vcpus: s.allocatedVcpus,
        allocated_memory_bytes: s.allocatedMemoryBytes,
        memory_utilization_ratio: s.allocatedMemoryBytes > 0 ? s.memoryRssBytes / s.allocatedMemoryBytes : null,
        allocated_memory: formatBytes(s.allocatedMemoryBytes),
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { state: InstanceState; timeout?: string } }>(
    '/instances/:id/wait',
    {
      config: READ,
      schema: {
        tags: TAGS,
        params: idParams,
        querystring: {
          type: 'object',
          required: ['state'],
          properties: { state: stateSchema, timeout: { type: 'string', maxLength: 32 } },
        },
      },
    },
    async (request) => {
      const { state, timeout } = request.query;
      if (state === 'Unknown') throw new HttpError(400, 'invalid_state', 'invalid target state: Unknown');
      let timeoutMs = WAIT_DEFAULT_MS;
      if (timeout !== undefined) {
        const ms = parseGoDuration(timeout);
        if (ms === undefined)
          throw new HttpError(
            400,
            'invalid_timeout',
            `invalid timeout format: time: invalid duration ${JSON.stringify(timeout)}`,
          );
        if (ms <= 0) throw new HttpError(400, 'invalid_timeout', 'timeout must be positive');
        timeoutMs = Math.min(ms, WAIT_CAP_MS);
      }
      const instance = await plane.getInstance(request.params.id);
      // A client that leaves stops the wait, not the instance.
      const abort = new AbortController();
      const socket = request.raw.socket;
      const onClose = () => abort.abort();
      socket.once('close', onClose);
      // Kept-alive sockets carry many waits: each takes its listener away again.
      const result = await plane
        .waitForState(instance.id, state, { timeoutMs, signal: abort.signal })
        .finally(() => socket.off('close', onClose));
      const out: Record<string, unknown> = { state: result.state, timed_out: result.timed_out };
      if (result.state_error !== undefined) out.state_error = result.state_error;
      return out;
    },
  );
}
