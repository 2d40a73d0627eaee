import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import { Ajv } from 'ajv';
import Fastify, { type FastifyInstance } from 'fastify';
import { installAuth } from './auth.js';
import { HttpError, sendError } from './errors.js';
import { installMetrics } from './metrics.js';
import { goPveQemuInstallRoutes } from './routes/gopveqemu/install.js';
import { goPveQemuVmRoutes } from './routes/gopveqemu/vm.js';
import { hypemanInstanceRoutes } from './routes/hypeman/instances.js';
import { hypemanLifecycleRoutes } from './routes/hypeman/lifecycle.js';
import { hypemanLogRoutes } from './routes/hypeman/logs.js';
import { hypemanWebSocketRoutes } from './routes/hypeman/ws.js';
import { nativeEventRoutes } from './routes/native/events.js';
import { nativeOperationRoutes } from './routes/native/operations.js';
import { nativeSystemRoutes } from './routes/native/system.js';
import type { BuildOptions, RouteEntry, ServerConfig } from './types.js';

/** Context every route module gets. */
export interface RouteDeps {
  plane: BuildOptions['plane'];
  config: ServerConfig;
  heartbeatMs: number;
}

/**
 * The server: go-pve-qemu's `/api`, hypeman's instance API, the native `/v1` routes, health,
 * metrics and `/openapi.json`, all behind the IP allowlist and bearer tokens. Nothing listens
 * until the caller calls `listen` (tests use `inject()`).
 */
export async function buildServer(opts: BuildOptions): Promise<FastifyInstance> {
  const config = opts.config ?? {};
  const store = opts.store ?? opts.plane.store;
  const app = Fastify({
    bodyLimit: config.bodyLimit ?? 256 * 1024,
    logger: loggerOptions(config),
    // The client address is worked out by auth.ts from trusted proxies only; Fastify's own
    // trustProxy stays off so request.ip is always the socket's peer.
    trustProxy: false,
    return503OnClosing: true,
  });

  // Every route, as registered: tests walk it so that no route escapes the auth checks.
  const routeTable: RouteEntry[] = [];
  app.decorate('vmplaneRoutes', routeTable);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods)
      if (method !== 'HEAD')
        routeTable.push({ method, url: route.url, access: route.config?.access, websocket: route.websocket === true });
  });

  // Bodies are validated strictly (no coercion, unknown fields refused, nothing removed);
  // query strings and path parameters arrive as text and are coerced to the schema's types.
  // date-time is checked by the routes themselves (Date.parse), so the format only documents.
  const base = { allErrors: false, strict: false, useDefaults: true, formats: { 'date-time': true } } as const;
  const strict = new Ajv({ ...base, coerceTypes: false, removeAdditional: false });
  const lenient = new Ajv({ ...base, coerceTypes: 'array', removeAdditional: false });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? strict.compile(schema) : lenient.compile(schema),
  );
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      request,
      reply,
      new HttpError(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`, '404 page not found'),
    ),
  );

  // POST routes without a body (stop, restore) must take an empty one with a JSON content type.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpError(400, 'invalid_request', 'the body is not valid JSON', 'invalid request body: invalid JSON'));
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'vmplane',
        version: '0.1.0',
        description: "vmplane's API: hypeman's instance API, go-pve-qemu's /api, native /v1",
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
  });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 * 1024 } });

  installAuth(app, store, config);
  installMetrics(app, opts.plane);

  const deps: RouteDeps = { plane: opts.plane, config, heartbeatMs: config.heartbeatMs ?? 15_000 };
  goPveQemuInstallRoutes(app, deps);
  goPveQemuVmRoutes(app, deps);
  hypemanInstanceRoutes(app, deps);
  hypemanLifecycleRoutes(app, deps);
  hypemanLogRoutes(app, deps);
  hypemanWebSocketRoutes(app, deps);
  nativeOperationRoutes(app, deps);
  nativeEventRoutes(app, deps);
  nativeSystemRoutes(app, deps);

  app.get(
    '/openapi.json',
    { config: { access: { scope: 'none', flavour: 'hypeman' } }, schema: { hide: true } },
    async () => app.swagger(),
  );
  return app;
}

function loggerOptions(config: ServerConfig): boolean | Record<string, unknown> {
  if (!config.logger) return false;
  const extra = config.logger === true ? {} : config.logger;
  return {
    level: extra.level ?? 'info',
    ...(extra.stream ? { stream: extra.stream } : {}),
    // Belt and braces: the request serialiser below logs no headers or bodies, and these paths
    // are censored should anything ever log them.
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        '*.passwd',
        '*.password',
        '*.tokenSecret',
        '*.token',
        'body.passwd',
        'body.password',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({
        method: req.method,
        url: (req.url ?? '').split('?')[0],
        ip: req.ip,
      }),
    },
  };
}
