import { createHash } from 'node:crypto';
import { AbortError, type CallOptions, deadline, TimeoutError } from '@vmplane/common';
// ssh2 is CommonJS: Node's ESM loader sees only its default export.
import ssh2, { type Client, type ConnectConfig } from 'ssh2';
import { SshAuthError, SshConnectError } from './errors.js';
import type { SshKeyPair } from './keys.js';

/** Where and as whom to reach a guest over SSH. */
export interface SshTarget {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** vmplane's key (the usual way in). */
  key?: SshKeyPair;
  /** A secret, tried after the key; never logged or put into an error. */
  password?: string;
  /**
   * The host key's fingerprint (`SHA256:...`) to insist on. Without one any host key is taken: a
   * freshly installed guest's key cannot be known beforehand, so vmplane learns it on first
   * contact (readiness) and pins it for the rest of the install.
   */
  hostKey?: string;
}

/** How far a connection attempt got, for messages that say where it stopped. */
export type SshPhase = 'tcp' | 'banner' | 'handshake' | 'auth' | 'ready';

export interface SshConnection {
  readonly client: Client;
  /** The server's host key fingerprint, `SHA256:<base64>`. */
  readonly hostKey: string;
  /** The server's identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2`). */
  readonly banner: string | undefined;
  close(): void;
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function checkTarget(target: SshTarget): void {
  if (typeof target?.host !== 'string' || target.host === '') throw new SshConnectError({ message: 'no SSH host' });
  if (typeof target.username !== 'string' || target.username === '') {
    throw new SshConnectError({ message: 'no SSH user', host: target.host });
  }
  if (!target.key && target.password === undefined) {
    throw new SshConnectError({ message: 'neither a key nor a password to log in with', host: target.host });
  }
}

const where = (t: SshTarget) => `${t.username}@${t.host}:${t.port ?? 22}`;

/**
 * One SSH session, authenticated. `timeout` bounds the whole attempt (TCP, banner, key exchange,
 * authentication); the error says which of them did not happen: SshConnectError for the first
 * three, SshAuthError when the guest refused the key. A caller's abort is an AbortError.
 */
export function connectSsh(target: SshTarget, opts: CallOptions = {}): Promise<SshConnection> {
  return new Promise<SshConnection>((resolve, reject) => {
    let d: ReturnType<typeof deadline>;
    try {
      checkTarget(target);
      d = deadline(opts);
    } catch (error) {
      reject(error);
      return;
    }
    const client = new ssh2.Client();
    let phase: SshPhase = 'tcp';
    let banner: string | undefined;
    let hostKey: string | undefined;
    let settled = false;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      d.dispose();
      if (error) {
        client.removeAllListeners('ready');
        // Errors after we gave up (a late socket error) must not go unhandled.
        client.on('error', () => {});
        client.end();
        client.destroy();
        reject(error);
        return;
      }
      resolve({
        client,
        hostKey: hostKey ?? 'unknown',
        banner,
        close: () => {
          client.end();
          client.destroy();
        },
      });
    };
    const stopped = () => {
      const why = d.reason();
      if (why instanceof TimeoutError) {
        finish(
          new SshConnectError({
            message: `no SSH session with ${where(target)} within ${opts.timeout} ms: ${describePhase(phase)}`,
            host: target.host,
            cause: why,
          }),
        );
      } else finish(why ?? new AbortError({ message: 'aborted' }));
    };
    if (d.signal.aborted) {
      stopped();
      return;
    }
    d.signal.addEventListener('abort', stopped, { once: true });
    client.on('connect', () => {
      phase = 'banner';
    });
    client.on('handshake', () => {
      phase = 'auth';
    });
    client.on('ready', () => {
      phase = 'ready';
      finish(undefined);
    });
    client.on('error', (error: Error & { level?: string }) => {
      let message = `SSH to ${where(target)} failed during ${phase}: ${error.message}`;
      if (target.hostKey !== undefined && hostKey !== undefined && hostKey !== target.hostKey) {
        message = `${where(target)} offered host key ${hostKey}, not the one it had (${target.hostKey})`;
      }
      finish(
        error.level === 'client-authentication'
          ? new SshAuthError({ message: `${where(target)} refused the login (${error.message})`, host: target.host })
          : new SshConnectError({ message, host: target.host, cause: error }),
      );
    });
    client.on('close', () => {
      finish(
        new SshConnectError({ message: `${where(target)} closed the connection during ${phase}`, host: target.host }),
      );
    });
    const config: ConnectConfig = {
      host: target.host,
      port: target.port ?? 22,
      username: target.username,
      // ssh2's own timer is a backstop only: our deadline decides, and says where it stopped.
      readyTimeout: 0,
      keepaliveInterval: 15_000,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => {
        hostKey = fingerprintOf(key);
        phase = 'handshake';
        return target.hostKey === undefined || target.hostKey === hostKey;
      },
      debug: (message: string) => {
        // ssh2 says nothing else when the server's identification line arrived.
        const m = /^Remote ident: '(.*)'$/.exec(message);
        if (m) {
          banner = m[1];
          if (phase === 'banner') phase = 'handshake';
        }
      },
    };
    if (target.key) config.privateKey = target.key.privateKey();
    if (target.password !== undefined) config.password = target.password;
    try {
      client.connect(config);
    } catch (error) {
      finish(new SshConnectError({ message: `SSH to ${where(target)}: ${(error as Error).message}`, cause: error }));
    }
  });
}

function describePhase(phase: SshPhase): string {
  switch (phase) {
    case 'tcp':
      return 'the TCP connection was not made';
    case 'banner':
      return 'connected, but the server sent no SSH banner';
    case 'handshake':
      return 'the key exchange did not finish';
    case 'auth':
      return 'authentication did not finish';
    default:
      return 'the session did not open';
  }
}
