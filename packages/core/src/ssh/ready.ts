import {
  AbortError,
  type BackoffOptions,
  backoffDelay,
  type CallOptions,
  deadline,
  sleep,
  TimeoutError,
} from '@vmplane/common';
import { ReadinessTimeoutError } from '../errors.js';
import { connectSsh, type SshTarget } from './connect.js';
import { SshAuthError } from './errors.js';
import { runOnConnection } from './run.js';

/**
 * Readiness over SSH: a guest is ready when it accepts a TCP connection, sends its SSH banner,
 * lets vmplane's key in and runs a command (`true`) to exit 0. A port that is open but silent (a
 * booting guest's sshd, a firewall that accepts and drops) is not ready, nor is a guest whose
 * cloud-init has not yet written the key. Attempts repeat with exponential backoff until the
 * deadline; the deadline is a ReadinessTimeoutError, never a success.
 */

export interface ReadinessOptions extends CallOptions {
  /** Overall deadline in ms (default 5 min). The caller's signal ends it too. */
  timeout?: number;
  /** Bound on one attempt (TCP + banner + auth + command), default 10 s. */
  attemptTimeout?: number;
  /** Between attempts: from 500 ms, doubling, up to 5 s, with jitter. */
  backoff?: BackoffOptions;
  /** The command that proves the guest takes commands (default `true`). */
  command?: string;
  /** Progress: one line when an attempt fails for a new reason. */
  log?: (message: string) => void | Promise<void>;
}

export interface ReadinessResult {
  /** The host key seen, `SHA256:...`: pin it for the sessions that follow. */
  hostKey: string;
  banner: string | undefined;
  attempts: number;
}

const DEFAULT_TIMEOUT = 5 * 60_000;

export async function waitForSsh(target: SshTarget, opts: ReadinessOptions = {}): Promise<ReadinessResult> {
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
  const d = deadline({ signal: opts.signal, timeout });
  const attemptTimeout = opts.attemptTimeout ?? 10_000;
  const command = opts.command ?? 'true';
  const endpoint = `${target.username}@${target.host}:${target.port ?? 22}`;
  let last: string | undefined;
  let attempts = 0;
  try {
    for (;;) {
      attempts++;
      try {
        const conn = await connectSsh(target, { signal: d.signal, timeout: attemptTimeout });
        try {
          const result = await runOnConnection(conn, command, { signal: d.signal, timeout: attemptTimeout });
          if (result.exitCode === 0) return { hostKey: conn.hostKey, banner: conn.banner, attempts };
          throw new Error(`${JSON.stringify(command)} exited with ${result.exitCode}`);
        } finally {
          conn.close();
        }
      } catch (error) {
        if (d.signal.aborted) break;
        const message =
          error instanceof SshAuthError ? `${error.message}; cloud-init may not have run yet` : describe(error);
        if (message !== last) {
          last = message;
          await opts.log?.(`not ready yet (attempt ${attempts}): ${message}`);
        }
      }
      try {
        await sleep(backoffDelay(attempts - 1, { initial: 500, max: 5_000, ...opts.backoff }), d.signal);
      } catch {
        break;
      }
    }
    // Only the deadline or the caller's signal end the loop.
    const why = d.reason();
    const callerTimedOut = why instanceof AbortError && opts.signal?.reason instanceof TimeoutError;
    if (why instanceof TimeoutError || callerTimedOut) {
      throw new ReadinessTimeoutError({
        message: `${endpoint} did not become ready over SSH within ${timeout} ms (${attempts} attempts)${last ? `: ${last}` : ''}`,
        cause: why,
      });
    }
    throw why ?? new AbortError({ message: 'aborted' });
  } finally {
    d.dispose();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
