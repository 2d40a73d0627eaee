import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from './errors.js';

export interface TlsOptions {
  /** PEM CA certificate(s) to trust instead of the system store (PVE's own /etc/pve/pve-root-ca.pem). */
  ca?: string | Buffer | readonly (string | Buffer)[] | undefined;
  /**
   * SHA-256 fingerprint of the server certificate (`AB:CD:...`, as PVE shows it, or bare hex).
   * The connection is accepted when the certificate matches it, whoever signed the certificate.
   */
  fingerprint?: string | undefined;
  /** Skip verification entirely. An explicit opt-in: prefer `ca` or `fingerprint`. */
  insecure?: boolean | undefined;
}

export function normaliseFingerprint(text: string): string {
  const hex = text
    .replace(/^sha256[:=]?/i, '')
    .replace(/[:\s]/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new InvalidArgumentError({
      message: 'fingerprint must be a SHA-256 fingerprint: 64 hex digits, colons allowed',
      argument: 'fingerprint',
      backend: BACKEND,
    });
  }
  return hex;
}

/** A pinned certificate did not match: nothing was sent on that connection. */
export class FingerprintMismatchError extends Error {
  readonly code = 'ERR_TLS_CERT_FINGERPRINT_MISMATCH';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`TLS certificate fingerprint ${actual} does not match the pinned ${expected}`);
  }
}

/**
 * An https agent that checks the pinned fingerprint once the handshake is done and only then hands
 * the socket to http, so no request byte (and no cookie) ever reaches a server that fails the pin.
 */
class PinnedAgent extends https.Agent {
  readonly #pin: string;
  constructor(opts: https.AgentOptions, pin: string) {
    super(opts);
    this.#pin = pin;
  }
  override createConnection(
    options: tls.ConnectionOptions,
    callback?: (err: Error | null, socket: Duplex) => void,
  ): Duplex {
    const socket = tls.connect({ ...options, rejectUnauthorized: false });
    const onError = (err: Error) => callback?.(err, socket);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.removeListener('error', onError);
      const actual = (socket.getPeerCertificate().fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
      if (actual !== this.#pin) {
        const err = new FingerprintMismatchError(this.#pin, actual);
        socket.destroy();
        callback?.(err, socket);
        return;
      }
      callback?.(null, socket);
    });
    // Returning nothing tells http.Agent to wait for the callback.
    return undefined as unknown as Duplex;
  }
}

/** The agent for a base URL: keep-alive, with the TLS policy the caller chose. */
export function createAgent(url: URL, opts: TlsOptions, maxSockets = 16): http.Agent {
  const common = { keepAlive: true, maxSockets };
  if (url.protocol !== 'https:') return new http.Agent(common);
  const ca = opts.ca === undefined ? undefined : Array.isArray(opts.ca) ? [...opts.ca] : (opts.ca as string | Buffer);
  if (opts.fingerprint)
    return new PinnedAgent({ ...common, ...(ca ? { ca } : {}) }, normaliseFingerprint(opts.fingerprint));
  return new https.Agent({ ...common, ...(ca ? { ca } : {}), rejectUnauthorized: !opts.insecure });
}
