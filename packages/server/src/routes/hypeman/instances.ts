import type { InstallRequest, InstallSpec, InstanceState } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../errors.js';
import { idempotencyOf, requireSuccess } from '../../ops.js';
import type { RouteDeps } from '../../server.js';
import { providerType } from '../gopveqemu/common.js';
import {
  idParams,
  parseGoDuration,
  parseSize,
  READ,
  stateSchema,
  TAGS,
  tagFilter,
  WRITE,
  wireInstance,
} from './common.js';

const NAME = '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$';
const strings = { type: 'array', maxItems: 256, items: { type: 'string', maxLength: 4096 } } as const;
const envSchema = {
  type: 'object',
  maxProperties: 256,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,255}$' },
  additionalProperties: { type: 'string', maxLength: 32_768 },
} as const;
const sizeString = { type: 'string', maxLength: 32 } as const;

/**
 * hypeman's `CreateInstanceRequest` (spec 0.3.0), every top-level field, so that any request the
 * SDK can send is accepted; nested policies hypeman alone has are accepted as objects and not
 * applied. vmplane adds `provider` and `kind`.
 */
export const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'image'],
  properties: {
    name: { type: 'string', pattern: NAME, maxLength: 63 },
    image: { type: 'string', minLength: 1, maxLength: 512, pattern: '^[^\\u0000-\\u001f\\u007f]+$' },
    platform: { type: 'string', pattern: '^[a-z0-9]+/[a-z0-9]+(/[a-z0-9.]+)?$' },
    size: sizeString,
    hotplug_size: sizeString,
    overlay_size: sizeString,
    disk_io_bps: sizeString,
    vcpus: { type: 'integer', minimum: 1, maximum: 256 },
    env: envSchema,
    credentials: { type: 'object' },
    tags: {
      type: 'object',
      maxProperties: 50,
      propertyNames: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9 _.:/=+@-]+$' },
      additionalProperties: { type: 'string', maxLength: 256, pattern: '^[A-Za-z0-9 _.:/=+@-]*$' },
    },
    ttl: { type: 'string', maxLength: 32 },
    expires_at: { type: 'string', format: 'date-time', maxLength: 64 },
    network: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        bandwidth_download: sizeString,
        bandwidth_upload: sizeString,
        egress: { type: 'object' },
      },
    },
    devices: strings,
    gpu: { type: 'object' },
    volumes: { type: 'array', items: { type: 'object' } },
    hypervisor: { type: 'string', enum: ['cloud-hypervisor', 'firecracker', 'qemu', 'qemu-microvm', 'vz'] },
    snapshot_policy: { type: 'object' },
    auto_standby: { type: 'object' },
    health_check: { type: 'object' },
    restart_policy: { type: 'object' },
    skip_kernel_headers: { type: 'boolean' },
    skip_guest_agent: { type: 'boolean' },
    entrypoint: strings,
    cmd: strings,
    provider: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
    kind: { type: 'string', enum: ['container', 'vm'] },
  },
} as const;

export interface CreateBody {
  name: string;
  image: string;
  size?: string;
  overlay_size?: string;
  vcpus?: number;
  env?: Record<string, string>;
  tags?: Record<string, string>;
  ttl?: string;
  expires_at?: string;
  entrypoint?: string[];
  cmd?: string[];
  provider?: string;
  kind?: 'container' | 'vm';
}

const updateBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    env: envSchema,
    auto_standby: { type: 'object' },
    health_check: { type: 'object' },
    restart_policy: { type: 'object' },
    ttl: { type: 'string', maxLength: 32 },
    expires_at: { type: 'string', format: 'date-time', maxLength: 64 },
  },
} as const;

interface UpdateBody {
  env?: Record<string, string>;
  ttl?: string;
  expires_at?: string;
}

/** ttl or expires_at, as one absolute time (null: no expiry); the two together are refused. */
function expiry(body: { ttl?: string; expires_at?: string }, from: number): string | null | undefined {
  if (body.ttl !== undefined && body.expires_at !== undefined)
    throw new HttpError(400, 'invalid_request', 'ttl and expires_at are mutually exclusive');
  if (body.ttl !== undefined) {
    const ms = parseGoDuration(body.ttl);
    if (ms === undefined || ms < 0) throw new HttpError(400, 'invalid_ttl', `invalid ttl: ${JSON.stringify(body.ttl)}`);
    return ms === 0 ? null : new Date(from + ms).toISOString();
  }
  if (body.expires_at !== undefined) {
    const t = Date.parse(body.expires_at);
    if (Number.isNaN(t) || t <= Date.now())
      throw new HttpError(400, 'invalid_expires_at', 'expires_at must be a time in the future');
    return new Date(t).toISOString();
  }
  return undefined;
}

export function hypemanInstanceRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { plane } = deps;

  app.get(
    '/health',
    { config: { access: { scope: 'none', flavour: 'hypeman' } }, schema: { tags: TAGS } },
    async () => ({ status: 'ok' }),
  );

  app.post<{ Body: CreateBody }>(
    '/instances',
    { config: WRITE, schema: { tags: TAGS, summary: 'Create and start an instance', body: createBody } },
    async (request, reply) => {
      const body = request.body;
      const idempotency = idempotencyOf(request, 'hypeman.create');
      const memory = parseSize(body.size ?? '1GB');
      if (memory === undefined || memory < 64 * 1024 ** 2)
        throw new HttpError(400, 'invalid_size', `invalid size: ${JSON.stringify(body.size)}`);
      const disk = parseSize(body.overlay_size ?? '10GB');
      if (disk === undefined || disk <= 0)
        throw new HttpError(400, 'invalid_overlay_size', `invalid overlay_size: ${JSON.stringify(body.overlay_size)}`);
      const expires = expiry(body, Date.now());
      const type = await providerType(deps, body.provider);
      const kind = body.kind ?? (type === 'lxd' || /(^|:)vztmpl\//.test(body.image) ? 'container' : 'vm');
      const spec: InstallSpec = {
        name: body.name,
        image: body.image,
        kind,
        vcpus: body.vcpus ?? 2,
        memoryMiB: Math.max(1, Math.round(memory / 1024 ** 2)),
        diskGiB: Math.max(1, Math.ceil(disk / 1024 ** 3)),
        readiness: type === 'lxd' ? 'exec' : 'ssh',
      };
      if (body.env) spec.env = body.env;
      if (body.tags) spec.tags = body.tags;
      const command = [...(body.entrypoint ?? []), ...(body.cmd ?? [])];
      if (command.length > 0) spec.command = command;
      const record: NonNullable<InstallRequest['record']> = {
        image: body.image,
        env: body.env ?? {},
        tags: body.tags ?? {},
        vcpus: spec.vcpus,
        size: body.size ?? '1GB',
      };
      if (expires !== undefined) record.expires_at = expires;
      const req: InstallRequest = { spec, record };
      if (body.provider !== undefined) req.provider = body.provider;
      if (idempotency) req.idempotency = idempotency;
      const { instance, operation } = await plane.createInstance(req);
      return reply.code(201).header('x-operation-id', operation.id).send(wireInstance(instance));
    },
  );

  app.get<{ Querystring: Record<string, unknown> & { state?: InstanceState; provider?: string } }>(
    '/instances',
    {
      config: READ,
      schema: {
        tags: TAGS,
        querystring: {
          type: 'object',
          additionalProperties: true,
          properties: { state: stateSchema, provider: { type: 'string', maxLength: 64 } },
        },
      },
    },
    async (request) => {
      const filter: Parameters<typeof plane.listInstances>[0] = {};
      if (request.query.state) filter.state = request.query.state;
      if (request.query.provider) filter.provider = request.query.provider;
      const tags = tagFilter(request.query);
      if (tags) filter.tags = tags;
      const list = await plane.listInstances(filter);
      // The store's filter is trusted, and checked again: a filter a store ignored must not widen the answer.
      return list
        .filter((i) => !filter.state || i.state === filter.state)
        .filter((i) => !tags || Object.entries(tags).every(([k, v]) => i.tags[k] === v))
        .map(wireInstance);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/instances/:id',
    { config: READ, schema: { tags: TAGS, params: idParams } },
    async (request) => wireInstance(await plane.getInstance(request.params.id)),
  );

  app.patch<{ Params: { id: string }; Body: UpdateBody }>(
    '/instances/:id',
    { config: WRITE, schema: { tags: TAGS, params: idParams, body: updateBody } },
    async (request) => {
      if (request.body === undefined || request.body === null)
        throw new HttpError(400, 'invalid_request', 'request body is required');
      const instance = await plane.getInstance(request.params.id);
      const change: Parameters<typeof plane.updateInstance>[1] = {};
      if (request.body.env) change.env = { ...instance.env, ...request.body.env };
      const expires = expiry(request.body, Date.now());
      if (expires !== undefined) change.expires_at = expires;
      return wireInstance(await plane.updateInstance(instance.id, change));
    },
  );

  app.delete<{ Params: { id: string }; Querystring: { graceful_shutdown?: boolean } }>(
    '/instances/:id',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        params: idParams,
        querystring: { type: 'object', properties: { graceful_shutdown: { type: 'boolean' } } },
      },
    },
    async (request, reply) => {
      const instance = await plane.getInstance(request.params.id);
      const started = await plane.act(instance.id, 'destroy', { force: request.query.graceful_shutdown !== true });
      await requireSuccess(plane, started.operation.id, 'delete instance');
      return reply.code(204).send();
    },
  );
}
