import type { InstallRequest, InstallSpec } from '@vmplane/core';
import type { FastifyInstance } from 'fastify';
import { HttpError, toErrorBody } from '../../errors.js';
import { idempotencyOf } from '../../ops.js';
import type { RouteDeps } from '../../server.js';
import type { GoPveQemuSettings } from '../../types.js';
import { providerType, streamOperation, WRITE } from './common.js';

/** A line of text without control characters: no quote or newline can reach a name or a command. */
const LINE = '^[^\\u0000-\\u001f\\u007f]*$';
const NAME = '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$';

/** go-pve-qemu's install body, plus vmplane's `provider` (which configured provider to use). */
export const installBody = {
  type: 'object',
  additionalProperties: false,
  required: ['os', 'version'],
  properties: {
    os: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
    version: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    name: { type: 'string', maxLength: 63, anyOf: [{ pattern: NAME }, { const: '' }] },
    id: { type: 'integer', minimum: 0, maximum: 999_999_999 },
    node: { type: 'string', maxLength: 63, anyOf: [{ pattern: NAME }, { const: '' }] },
    cpu: { type: 'integer', minimum: -1_000_000, maximum: 1_000_000 },
    ram: { type: 'integer', minimum: -1_000_000_000, maximum: 1_000_000_000 },
    disk: { type: 'string', pattern: '^[0-9]{1,7}G?$' },
    user: { type: 'string', anyOf: [{ pattern: '^[a-z_][a-z0-9_-]{0,31}$' }, { const: '' }] },
    passwd: { type: 'string', maxLength: 256, pattern: LINE },
    pubkey: { type: 'string', maxLength: 16_384, pattern: LINE },
    // Accepted, as go-pve-qemu accepts them, and ignored, as it ignores them.
    storage: { type: 'string', maxLength: 256, pattern: LINE },
    ip: { type: 'string', maxLength: 64, pattern: LINE },
    gateway: { type: 'string', maxLength: 64, pattern: LINE },
    provider: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
  },
} as const;

export interface InstallBody {
  os: string;
  version: string;
  name?: string;
  id?: number;
  node?: string;
  cpu?: number;
  ram?: number;
  disk?: string;
  user?: string;
  passwd?: string;
  pubkey?: string;
  provider?: string;
}

const DEFAULT_USER: Readonly<Record<string, string>> = { debian: 'debian', ubuntu: 'ubuntu', rockylinux: 'rocky' };

/**
 * The clamping: CPU default 2 within 1..32 and VM_MAX_CPU; RAM default 2048, at least
 * 512 and at most VM_MAX_RAM; disk default 16G, at least 16G and at most VM_MAX_DISK. (go-pve-qemu
 * itself clamps before defaulting, so an omitted cpu gives 1; its documentation's 2/2048 win.)
 */
export function clampInstall(
  body: InstallBody,
  settings: GoPveQemuSettings = {},
): { cpu: number; ram: number; diskGiB: number } {
  const maxCpu = Math.min(32, settings.VM_MAX_CPU && settings.VM_MAX_CPU > 0 ? settings.VM_MAX_CPU : 32);
  const cpu = Math.max(1, Math.min(maxCpu, body.cpu === undefined || body.cpu === 0 ? 2 : body.cpu));
  let ram = Math.max(512, body.ram === undefined || body.ram === 0 ? 2048 : body.ram);
  if (settings.VM_MAX_RAM && settings.VM_MAX_RAM > 0) ram = Math.min(ram, settings.VM_MAX_RAM);
  let diskGiB = Math.max(16, body.disk === undefined ? 16 : Number.parseInt(body.disk, 10));
  if (settings.VM_MAX_DISK && settings.VM_MAX_DISK > 0) diskGiB = Math.min(diskGiB, settings.VM_MAX_DISK);
  return { cpu, ram, diskGiB };
}

export function goPveQemuInstallRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post<{ Body: InstallBody }>(
    '/api/vm/install',
    {
      config: WRITE,
      schema: { body: installBody, tags: ['go-pve-qemu'], summary: 'Install a VM, streaming every stage (SSE)' },
      // go-pve-qemu answered a bad body with 400 JSON; vmplane keeps that shape and adds `code`.
      errorHandler: (error, _request, reply) => {
        const body = toErrorBody(error);
        if (body.status === 409) void reply.header('x-should-retry', 'false');
        const message = body.status === 400 ? `please check your input: ${body.message}` : body.message;
        return reply.code(body.status).send({ success: false, code: body.code, message });
      },
    },
    async (request, reply) => {
      const body = request.body;
      const idempotency = idempotencyOf(request, 'gopveqemu.install');
      const { cpu, ram, diskGiB } = clampInstall(body, deps.config.gopveqemu);
      const type = await providerType(deps, body.provider);
      const requestedId = body.id !== undefined && body.id !== 0 ? body.id : undefined;
      const spec: InstallSpec = {
        name: body.name ? body.name : requestedId !== undefined ? `vm-${requestedId}` : `vm-${Date.now().toString(36)}`,
        // Proxmox names cloud images by catalogue (`debian-12`); LXD by `<os>/<version>`.
        image: type === 'proxmox' ? `${body.os}-${body.version}` : `${body.os}/${body.version}`,
        kind: 'vm',
        vcpus: cpu,
        memoryMiB: ram,
        diskGiB,
        user: body.user || DEFAULT_USER[body.os] || body.os,
      };
      if (type === 'lxd') spec.kind = 'container';
      if (body.node) spec.targetNode = body.node;
      if (body.passwd !== undefined) spec.password = body.passwd;
      if (body.pubkey) spec.sshPublicKey = body.pubkey;
      const req: InstallRequest = { spec, summary: true };
      if (body.provider !== undefined) req.provider = body.provider;
      if (requestedId !== undefined) req.requestedId = requestedId;
      if (idempotency) req.idempotency = idempotency;
      if (spec.password !== undefined && /[\r\n]/.test(spec.password))
        throw new HttpError(400, 'invalid_request', 'body.passwd: must be one line');
      const started = await deps.plane.install(req);
      await streamOperation(request, reply, deps, started.operation);
    },
  );
}
