import { createHash } from 'node:crypto';
import type { ControlPlaneApi, OperationEvent, OperationRecord } from '@vmplane/core';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

const ENDED = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

export function isEnded(op: OperationRecord): boolean {
  return ENDED.has(op.status);
}

/** Waits for an operation to end (from its journal and live events, no polling) and returns it. */
export async function awaitOperation(
  plane: ControlPlaneApi,
  id: string,
  signal?: AbortSignal,
): Promise<OperationRecord> {
  const first = await plane.getOperation(id);
  if (isEnded(first)) return first;
  const opts: { follow: boolean; signal?: AbortSignal; afterSeq?: number } = { follow: true };
  if (signal) opts.signal = signal;
  for await (const _event of plane.operationEvents(id, opts)) {
    // Only the end matters here; the events are the journal's.
  }
  return plane.getOperation(id);
}

/** Waits for the operation and throws its error as the answer when it did not succeed. */
export async function requireSuccess(plane: ControlPlaneApi, id: string, what: string): Promise<OperationRecord> {
  const op = await awaitOperation(plane, id);
  if (op.status === 'succeeded') return op;
  const code = op.error?.code ?? (op.status === 'cancelled' ? 'cancelled' : 'internal_error');
  const message = op.error?.message ?? `operation ${op.status}`;
  const status = code === 'invalid_state' ? 409 : code === 'not_found' ? 404 : code === 'not_supported' ? 501 : 500;
  throw new HttpError(status, code, message, `failed to ${what}: ${message}\n`);
}

/** The events of an operation from after `afterSeq`, live until it ends or `signal` aborts. */
export function followOperation(
  plane: ControlPlaneApi,
  id: string,
  afterSeq: number,
  signal: AbortSignal,
): AsyncIterable<OperationEvent> {
  return plane.operationEvents(id, { afterSeq, signal, follow: true });
}

/**
 * The `Idempotency-Key` of a creating request, with the hash of its body (keys sorted, so the
 * same fields in another order are the same body) and a scope per route and token.
 */
export function idempotencyOf(
  request: FastifyRequest,
  route: string,
): { key: string; scope: string; bodyHash: string } | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || !/^[\x21-\x7e]{1,255}$/.test(key))
    throw new HttpError(
      400,
      'invalid_request',
      'Idempotency-Key must be 1 to 255 printable ASCII characters',
      'invalid request body: bad Idempotency-Key',
    );
  const bodyHash = createHash('sha256')
    .update(canonicalJson(request.body ?? null))
    .digest('hex');
  return { key, scope: `${route}:${request.token?.id ?? 'anonymous'}`, bodyHash };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
