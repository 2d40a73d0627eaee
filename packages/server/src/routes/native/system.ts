import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../../server.js';
import type { RouteAccess } from '../../types.js';

const READ: { access: RouteAccess } = { access: { scope: 'read', flavour: 'hypeman' } };

export function nativeSystemRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get(
    '/healthz',
    { config: { access: { scope: 'none', flavour: 'hypeman' } }, schema: { tags: ['vmplane'] } },
    async () => ({ status: 'ok' }),
  );

  app.get('/v1/providers', { config: READ, schema: { tags: ['vmplane'] } }, async () => deps.plane.providers());

  app.get('/v1/nodes', { config: READ, schema: { tags: ['vmplane'] } }, async () => deps.plane.nodes());
}
