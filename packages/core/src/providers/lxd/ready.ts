import { connect } from 'node:net';
import { backoffDelay, type CallOptions, deadline, sleep, TimeoutError } from '@vmplane/common';
import type { LxdClient } from '@vmplane/lxd';
import { ReadinessTimeoutError } from '../../errors.js';
import type { InstallSpec } from '../provider.js';
import { primaryIpv4 } from './states.js';

/** Each probe gets at most this long: a hung exec must not eat the whole deadline in one go. */
const ATTEMPT_TIMEOUT = 10_000;
// A container takes commands within tens of milliseconds of its start: the first retries come quickly.
const BACKOFF = { initial: 50, max: 5_000, factor: 2, jitter: 0.3 } as const;

export interface ReadyOptions extends CallOptions {
  readiness?: InstallSpec['readiness'];
  /** Told why each probe failed (for the stage's log). */
  onAttempt?: (attempt: number, why: string) => void;
}

/**
 * Waits until the guest takes commands: `true` run through exec exits 0 (a container's init is up,
 * a VM's lxd-agent answers). With `readiness: 'ssh'`, port 22 of its address must also accept.
 *
 * The deadline is always an error, never a success: a TimeoutError of our own or a caller's signal
 * that fired for a deadline (AbortSignal.timeout, a TimeoutError reason) becomes
 * ReadinessTimeoutError; any other abort (a cancel) is rethrown as its reason.
 */
export async function waitReady(lxd: LxdClient, name: string, opts: ReadyOptions): Promise<void> {
  const d = deadline({ ...(opts.signal ? { signal: opts.signal } : {}), timeout: opts.timeout });
  let last = 'no probe finished';
  try {
    for (let attempt = 0; ; attempt++) {
      d.throwIfAborted();
      try {
        const why = await probe(lxd, name, opts.readiness, d.signal);
        if (why === undefined) return;
        last = why;
      } catch (error) {
        if (d.signal.aborted) break;
        last = error instanceof Error ? error.message : String(error);
      }
      opts.onAttempt?.(attempt + 1, last);
      try {
        await sleep(backoffDelay(attempt, BACKOFF), d.signal);
      } catch {
        break;
      }
    }
  } finally {
    d.dispose();
  }
  throw readinessFailure(d.reason(), opts.signal, name, last);
}

/** Undefined when ready; otherwise why not. */
async function probe(
  lxd: LxdClient,
  name: string,
  readiness: ReadyOptions['readiness'],
  signal: AbortSignal,
): Promise<string | undefined> {
  // Recorded output: no websockets to race against a command that ends at once (canonical/lxd#11422).
  const result = await lxd.instances.exec(name, { command: ['true'], signal, timeout: ATTEMPT_TIMEOUT });
  if (result.exitCode !== 0) return `exec of true exited ${result.exitCode}`;
  if (readiness !== 'ssh') return undefined;
  const address = primaryIpv4(await lxd.instances.state(name, { signal, timeout: ATTEMPT_TIMEOUT }));
  if (address === undefined) return 'no IPv4 address yet for SSH';
  return (await portOpen(address, 22, signal)) ? undefined : `port 22 of ${address} does not accept yet`;
}

function portOpen(host: string, port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: ATTEMPT_TIMEOUT, signal });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

function readinessFailure(why: unknown, callerSignal: AbortSignal | undefined, name: string, last: string): Error {
  const callerReason: unknown = callerSignal?.aborted ? callerSignal.reason : undefined;
  const isDeadline = why instanceof TimeoutError || (callerSignal?.aborted === true && isTimeout(callerReason));
  if (!isDeadline && callerSignal?.aborted) {
    return callerReason instanceof Error ? callerReason : (why as Error);
  }
  return new ReadinessTimeoutError({
    message: `${name} did not become ready before its deadline (last: ${last})`,
    ...(why instanceof Error ? { cause: why } : {}),
  });
}

/** AbortSignal.timeout's DOMException, our TimeoutError, or anything else named for a timeout. */
function isTimeout(reason: unknown): boolean {
  return reason instanceof TimeoutError || (reason instanceof Error && reason.name === 'TimeoutError');
}
