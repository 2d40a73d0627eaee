import type { ControlPlaneApi, OperationStatus } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const ENDED: ReadonlySet<OperationStatus> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/**
 * Prometheus metrics, in a registry of this server's own (two servers in one process do not share
 * counters). Labels are route patterns, methods, statuses, kinds and states: never a URL with ids,
 * a header or a body, so nothing secret can reach them.
 */
export function installMetrics(app: FastifyInstance, plane: ControlPlaneApi): Registry {
  const registry = new Registry();
  const requests = new Counter({
    name: 'vmplane_http_requests_total',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'vmplane_http_request_duration_seconds',
    help: 'HTTP request durations (streams: until they end)',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const operations = new Counter({
    name: 'vmplane_operations_total',
    help: 'Operations that ended, by kind and final status',
    labelNames: ['kind', 'status'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'vmplane_instances',
    help: 'Instances by state, from the store',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const i of await plane.listInstances()) counts.set(i.state, (counts.get(i.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });

  const seen = new Set<string>();
  const unsubscribe = plane.subscribe((message) => {
    if (message.type !== 'operation' || !ENDED.has(message.operation.status)) return;
    if (seen.has(message.operation.id)) return;
    seen.add(message.operation.id);
    if (seen.size > 10_000) seen.clear();
    operations.inc({ kind: message.operation.kind, status: message.operation.status });
  });
  app.addHook('onClose', async () => unsubscribe());

  // Counted when the response finishes, so hijacked replies (SSE, WebSockets) count too.
  app.addHook('onRequest', async (request, reply) => {
    const started = process.hrtime.bigint();
    reply.raw.once('close', () => {
      const route = request.routeOptions.url ?? 'unmatched';
      const labels = { method: request.method, route };
      durations.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      requests.inc({ ...labels, status: String(reply.raw.statusCode) });
    });
  });

  app.get(
    '/metrics',
    { config: { access: { scope: 'read', flavour: 'hypeman' } }, schema: { hide: true } },
    async (_request, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
  return registry;
}
