import type { Instance, OperationRecord } from '@vmplane/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../errors.js';
import type { RouteDeps } from '../../server.js';
import { goPveQemuEvent, lastEventId, SseStream, sendClose } from '../../sse.js';
import type { RouteAccess } from '../../types.js';

export const READ: { access: RouteAccess } = { access: { scope: 'read', flavour: 'gopveqemu' } };
export const WRITE: { access: RouteAccess } = { access: { scope: 'write', flavour: 'gopveqemu' } };

/**
 * go-pve-qemu's numeric ids of instances: the VMID on Proxmox; on LXD the id vmplane allocated at
 * install, which the instance record does not carry, so it is read from the install operations'
 * results (`vmId`, with `instanceId`).
 */
export async function vmidIndex(deps: RouteDeps): Promise<(instance: Instance) => number | undefined> {
  const fromOps = new Map<string, number>();
  for (const op of await deps.plane.listOperations({ status: 'succeeded', limit: 1000 })) {
    if (op.kind !== 'install') continue;
    const id = op.result?.instanceId ?? op.instanceId;
    const vmid = op.result?.vmId;
    if (typeof id === 'string' && typeof vmid === 'number') fromOps.set(id, vmid);
  }
  return (instance) => {
    if (instance.ref.type === 'proxmox') return instance.ref.vmid;
    const fromRef = (instance.ref as { vmid?: unknown }).vmid;
    if (typeof fromRef === 'number') return fromRef;
    return fromOps.get(instance.id);
  };
}

/** `:id` parsed as go-pve-qemu does (a decimal integer), refused with its texts otherwise. */
export function parseVmid(raw: string, badIdText: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw new HttpError(400, 'invalid_request', 'invalid VM ID', badIdText);
  return Number(raw);
}

export async function findByVmid(deps: RouteDeps, vmid: number): Promise<Instance> {
  const vmidOf = await vmidIndex(deps);
  for (const instance of await deps.plane.listInstances()) if (vmidOf(instance) === vmid) return instance;
  throw new HttpError(404, 'not_found', `VM ${vmid} not found`, `VM ${vmid} not found`);
}

export function isRunning(instance: Instance): boolean {
  return instance.state === 'Running' || instance.state === 'Initializing';
}

/** go-pve-qemu's CheckID rules, with its texts (no trailing newline). */
export function checkRunning(instance: Instance, must: 'running' | 'stopped'): void {
  if (must === 'running' && !isRunning(instance))
    throw new HttpError(409, 'invalid_state', 'VM is not running', 'VM is not running');
  if (must === 'stopped' && isRunning(instance))
    throw new HttpError(409, 'invalid_state', 'VM is running', 'VM is running');
}

const typeCaches = new WeakMap<object, Promise<Map<string, string>>>();

/** The type (`lxd`, `proxmox`) of the named provider, or of the default one. */
export async function providerType(deps: RouteDeps, name: string | undefined): Promise<string | undefined> {
  if (deps.config.providerTypes) {
    if (name !== undefined) return deps.config.providerTypes[name];
    const fallback = deps.config.defaultProvider;
    if (fallback !== undefined && fallback in deps.config.providerTypes) return deps.config.providerTypes[fallback];
    return Object.values(deps.config.providerTypes)[0];
  }
  let cached = typeCaches.get(deps.plane);
  if (!cached) {
    cached = deps.plane.providers().then((list) => {
      const m = new Map<string, string>();
      for (const p of list) {
        m.set(p.name, p.type);
        if (p.default) m.set('', p.type);
      }
      return m;
    });
    typeCaches.set(deps.plane, cached);
  }
  const map = await cached.catch(() => {
    typeCaches.delete(deps.plane);
    return new Map<string, string>();
  });
  return map.get(name ?? '');
}

/**
 * Streams an operation's journal as go-pve-qemu's SSE: `id:` per event so a client can resume,
 * then `event: close` with `{}`, which its clients wait for. The stream ends when the operation
 * does; a client that leaves early stops only its stream (the operation goes on).
 */
export async function streamOperation(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: RouteDeps,
  operation: OperationRecord,
): Promise<void> {
  const sse = new SseStream(request, reply, {
    heartbeatMs: deps.heartbeatMs,
    headers: { 'x-operation-id': operation.id },
  });
  try {
    const events = deps.plane.operationEvents(operation.id, {
      afterSeq: lastEventId(request),
      signal: sse.signal,
      follow: true,
    });
    for await (const event of events) {
      if (sse.closed) break;
      sse.send(goPveQemuEvent(event), { id: event.seq });
    }
  } catch (error) {
    if (!sse.closed) {
      const message = error instanceof Error ? error.message : String(error);
      sse.send({ step: '', status: 'error', message: `[-] ${message}` });
    }
  }
  if (!sse.closed) sendClose(sse);
}
