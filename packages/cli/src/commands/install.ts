/**
 * `vmplane install`: go-pve-qemu's POST /api/vm/install, with its stage stream rendered live.
 *
 * - An `Idempotency-Key` goes with the request, so a retried or resumed request is the same
 *   operation, never a second install.
 * - A dropped stream is resumed with `Last-Event-ID`: from /v1/operations/{id}/events when the
 *   server said which operation it is (the `x-operation-id` or `x-vmplane-operation` header, or
 *   `operation_id` in the events), otherwise by posting the same body with the same key again.
 * - Ctrl-C asks the server to cancel (POST /v1/operations/{id}/cancel) and keeps reading, so the
 *   user sees the undo events; the command then exits 130. A second Ctrl-C stops waiting.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Client, segment } from '../client.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import type { Output, StageEvent, StageRenderer, StageStatus } from '../render/stages.js';
import { resumableEvents, type SseEvent } from '../sse.js';

/** go-pve-qemu's install body, plus vmplane's `provider`. `passwd` is a secret: never printed. */
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

export interface InstallFlags {
  os?: string;
  version?: string;
  name?: string;
  id?: string;
  node?: string;
  cpu?: string;
  ram?: string;
  disk?: string;
  user?: string;
  pubkey?: string;
  provider?: string;
}

/** Checks the flags and builds the body (without the password, which the caller reads). */
export async function installBody(flags: InstallFlags): Promise<InstallBody> {
  if (!flags.os) throw new UsageError('--os is required (e.g. --os debian)');
  if (!flags.version) throw new UsageError('--version is required (e.g. --version 12)');
  const body: InstallBody = { os: flags.os, version: flags.version };
  if (flags.name !== undefined) body.name = flags.name;
  if (flags.node !== undefined) body.node = flags.node;
  if (flags.user !== undefined) body.user = flags.user;
  if (flags.provider !== undefined) body.provider = flags.provider;
  if (flags.id !== undefined) body.id = positiveInt('--id', flags.id);
  if (flags.cpu !== undefined) body.cpu = positiveInt('--cpu', flags.cpu);
  if (flags.ram !== undefined) body.ram = positiveInt('--ram', flags.ram);
  if (flags.disk !== undefined) {
    // go-pve-qemu reads `<n>G` (and silently turns anything else into 16G); we refuse instead.
    if (!/^[1-9][0-9]*G?$/.test(flags.disk))
      throw new UsageError(`--disk must be a size in GiB like 20G, not ${JSON.stringify(flags.disk)}`);
    body.disk = flags.disk.endsWith('G') ? flags.disk : `${flags.disk}G`;
  }
  if (flags.pubkey !== undefined) {
    try {
      body.pubkey = (await readFile(flags.pubkey, 'utf8')).trim();
    } catch (error) {
      throw new UsageError(`cannot read --pubkey ${flags.pubkey}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    if (!/^(ssh-|ecdsa-|sk-)/.test(body.pubkey))
      throw new UsageError(`--pubkey ${flags.pubkey} is not an SSH public key`);
  }
  return body;
}

function positiveInt(flag: string, value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value)))
    throw new UsageError(`${flag} must be a positive integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** The stage event in one SSE event's data, or undefined for data that is none (`{}` of close). */
export function parseStageEvent(event: SseEvent): (StageEvent & { operationId?: string }) | undefined {
  let data: unknown;
  try {
    data = JSON.parse(event.data);
  } catch {
    return { step: '', status: 'processing', message: event.data };
  }
  if (!data || typeof data !== 'object') return undefined;
  const d = data as Record<string, unknown>;
  if (typeof d.message !== 'string') return undefined;
  // go-pve-qemu's handler-level errors are `{"message": "..."}` alone: an error with no stage.
  const status: StageStatus = isStatus(d.status) ? d.status : 'error';
  const out: StageEvent & { operationId?: string } = {
    step: typeof d.step === 'string' ? d.step : '',
    status,
    message: d.message,
  };
  if (typeof d.vm_id === 'number') out.vm_id = d.vm_id;
  if (typeof d.ip === 'string' && d.ip !== '') out.ip = d.ip;
  const op = d.operation_id ?? d.operationId;
  if (typeof op === 'string' && op !== '') out.operationId = op;
  return out;
}

function isStatus(v: unknown): v is StageStatus {
  return v === 'processing' || v === 'success' || v === 'error' || v === 'info';
}

export interface FollowOptions {
  client: Client;
  body: InstallBody;
  renderer: StageRenderer;
  /** Where interruptions come from; process in the CLI, an EventEmitter in tests. */
  signals: Pick<NodeJS.Process, 'on' | 'off'>;
  idempotencyKey?: string;
  delay?: (ms: number) => Promise<void>;
}

export interface InstallResult {
  exitCode: number;
  operationId: string | undefined;
  vmId: number | undefined;
  ip: string | undefined;
}

/** Runs the install and renders its stream; resolves with the exit code once the stream ends. */
export async function followInstall(opts: FollowOptions): Promise<InstallResult> {
  const { client, renderer } = opts;
  const key = opts.idempotencyKey ?? randomUUID();
  const stop = new AbortController();
  let operationId: string | undefined;
  let interrupted = 0;
  let cancelSent = false;
  let vmId: number | undefined;
  let ip: string | undefined;
  let sawError = false;
  let lastStatus: StageStatus | undefined;

  const sendCancel = async () => {
    if (cancelSent || !operationId) return;
    cancelSent = true;
    try {
      await client.request(`/v1/operations/${segment(operationId)}/cancel`, { method: 'POST', body: {} });
      renderer.note('cancel requested; undoing what was done (Ctrl-C again to stop waiting)');
    } catch (error) {
      renderer.note(`cancel failed: ${error instanceof Error ? error.message : error}`);
    }
  };
  const onSigint = () => {
    interrupted++;
    if (interrupted === 1) {
      if (operationId) void sendCancel();
      else renderer.note('cancelling as soon as the server names the operation...');
      return;
    }
    renderer.note(
      `stopped waiting${operationId ? `; operation ${operationId} may still be undoing (vmplane cancels it)` : ''}`,
    );
    stop.abort();
  };
  opts.signals.on('SIGINT', onSigint);

  const learn = (id: string | null | undefined) => {
    if (!id || operationId) return;
    operationId = id;
    if (interrupted > 0) void sendCancel();
  };

  try {
    const events = resumableEvents({
      // go-pve-qemu's stream ends with `event: close`; the native one with `end` (or `error`).
      isEnd: (e) => e.event === 'close' || e.event === 'end' || e.event === 'error',
      onReconnect: (attempt) => renderer.note(`the stream dropped; reconnecting (attempt ${attempt})...`),
      ...(opts.delay ? { delay: opts.delay } : {}),
      open: async (lastEventId) => {
        const headers: Record<string, string> = { accept: 'text/event-stream', 'idempotency-key': key };
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        const response =
          lastEventId !== undefined && operationId
            ? await client.request(`/v1/operations/${segment(operationId)}/events`, { headers, signal: stop.signal })
            : await client.request('/api/vm/install', {
                method: 'POST',
                body: opts.body,
                headers,
                signal: stop.signal,
              });
        learn(response.headers.get('x-vmplane-operation') ?? response.headers.get('x-operation-id'));
        return response;
      },
    });
    for await (const sse of events) {
      if (sse.event === 'close' || sse.event === 'end') break;
      // The native stream names its stage events `stage` and a failure `error`; other names are
      // not stages.
      if (sse.event !== undefined && !['message', 'stage', 'error'].includes(sse.event)) continue;
      const event = parseStageEvent(sse);
      if (!event) continue;
      learn(event.operationId);
      if (event.vm_id !== undefined) vmId = event.vm_id;
      if (event.ip !== undefined) ip = event.ip;
      if (event.status === 'error') sawError = true;
      lastStatus = event.status;
      renderer.event(event);
    }
  } catch (error) {
    if (stop.signal.aborted) return { exitCode: ExitCode.interrupted, operationId, vmId, ip };
    throw error;
  } finally {
    opts.signals.off('SIGINT', onSigint);
    renderer.finish();
  }
  if (interrupted > 0) {
    if (!operationId)
      throw new CliError('interrupted, but the server never named the operation, so it could not be cancelled', {
        exitCode: ExitCode.interrupted,
        hint: 'list operations with GET /v1/operations and cancel it there',
      });
    return { exitCode: ExitCode.interrupted, operationId, vmId, ip };
  }
  // An error that the install recovered from (go-pve-qemu's missing user key) is followed by more
  // successes; one that ended it is the last word.
  const failed = lastStatus === undefined || (sawError && lastStatus !== 'success' && lastStatus !== 'info');
  return { exitCode: failed ? ExitCode.failure : ExitCode.ok, operationId, vmId, ip };
}

export type { Output };
