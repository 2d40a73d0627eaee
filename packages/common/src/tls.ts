import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { FingerprintMismatchError, InvalidArgumentError, TlsVerificationError } from './errors.js';

export type Pem = string | Buffer;

/** How a client decides to trust a server's certificate. */
export interface TlsTrust {
  /** PEM CA certificate(s) to trust instead of the system store. */
  ca?: Pem | readonly Pem[] | undefined;
  /**
   * SHA-256 fingerprint of the server certificate (`AB:CD:...` as PVE and LXD show it, or bare hex):
   * that certificate alone is accepted, whoever signed it and whatever names it carries.
   */
  fingerprint?: string | undefined;
  /** The server's own certificate (PEM), pinned by its fingerprint, as `lxc remote add` pins it. */
  serverCert?: Pem | undefined;
  /** Accept any certificate. An explicit opt-in for first contact: prefer a pin or a CA. */
  insecure?: boolean | undefined;
  /** Client certificate and key (PEM), for servers that authenticate clients by certificate. */
  cert?: Pem | undefined;
  key?: Pem | undefined;
}

/** Lower-case hex without colons; refuses what is not a SHA-256 fingerprint. */
export function normaliseFingerprint(text: string, argument = 'fingerprint', backend?: string): string {
  const hex =
    typeof text === 'string'
      ? text
          .replace(/^sha256[:=]?/i, '')
          .replace(/[:\s]/g, '')
          .toLowerCase()
      : '';
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new InvalidArgumentError({
      message: `${argument} must be a SHA-256 fingerprint: 64 hex digits, colons allowed`,
      argument,
      backend,
    });
  }
  return hex;
}

/** The SHA-256 fingerprint of a PEM certificate, in {@link normaliseFingerprint}'s form. */
export function fingerprintOf(pem: Pem, argument = 'serverCert', backend?: string): string {
  try {
    return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
  } catch (error) {
    throw new InvalidArgumentError({
      message: `${argument} is not a PEM certificate`,
      argument,
      backend,
      cause: error,
    });
  }
}

/** The pin a trust policy asks for, if any. */
export function pinOf(trust: TlsTrust, backend?: string): string | undefined {
  if (trust.insecure) return undefined;
  if (trust.fingerprint) return normaliseFingerprint(trust.fingerprint, 'fingerprint', backend);
  if (trust.serverCert) return fingerprintOf(trust.serverCert, 'serverCert', backend);
  return undefined;
}

// Codes Node and OpenSSL give a refused certificate: deterministic, so never worth a retry.
const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A TlsVerificationError for Node's certificate failures, or undefined for other errors. */
export function certificateError(
  error: NodeJS.ErrnoException,
  what: string,
  backend?: string,
): TlsVerificationError | undefined {
  if (error instanceof TlsVerificationError) return error;
  if (!error.code || !CERT_CODES.has(error.code)) return undefined;
  return new TlsVerificationError({
    message: `${what}: the server's certificate was refused (${error.code}): ${error.message}`,
    backend,
    syscallCode: error.code,
    cause: error,
  });
}

type ConnectCallback = (err: Error | null, socket: Duplex) => void;

/**
 * A `createConnection` for http(s) requests, agents and websockets that checks the pin once the
 * handshake is done and only then hands the socket over, so no request byte (no cookie, no
 * token) reaches a server that fails the pin.
 */
export function pinnedConnector(pin: string, backend?: string) {
  return (options: tls.ConnectionOptions, callback?: ConnectCallback): Duplex => {
    const socket = tls.connect({ ...options, rejectUnauthorized: false });
    const onError = (err: Error) => callback?.(err, socket);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.removeListener('error', onError);
      const actual = (socket.getPeerCertificate().fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
      if (actual !== pin) {
        socket.destroy();
        callback?.(
          new FingerprintMismatchError({
            message: `TLS certificate fingerprint ${actual || '(none)'} does not match the pinned ${pin}`,
            backend,
            expected: pin,
            actual,
          }),
          socket,
        );
        return;
      }
      callback?.(null, socket);
    });
    // Returning nothing tells http to wait for the callback.
    return undefined as unknown as Duplex;
  };
}

class PinnedAgent extends https.Agent {
  readonly #connect: ReturnType<typeof pinnedConnector>;
  constructor(opts: https.AgentOptions, pin: string, backend: string | undefined) {
    super(opts);
    this.#connect = pinnedConnector(pin, backend);
  }
  override createConnection(options: tls.ConnectionOptions, callback?: ConnectCallback): Duplex {
    return this.#connect(options, callback);
  }
}

/** Options for `tls.connect`/`https.request` with the trust policy (a pin needs {@link pinnedConnector} too). */
export function tlsOptions(trust: TlsTrust): https.AgentOptions {
  const out: https.AgentOptions = {};
  if (trust.cert) out.cert = trust.cert;
  if (trust.key) out.key = trust.key;
  if (trust.ca !== undefined) out.ca = Array.isArray(trust.ca) ? [...trust.ca] : (trust.ca as Pem);
  if (trust.insecure) out.rejectUnauthorized = false;
  return out;
}

export interface AgentOptions {
  keepAlive?: boolean | undefined;
  maxSockets?: number | undefined;
  backend?: string | undefined;
}

/** The agent for a base URL: keep-alive, with the trust policy the caller chose. */
export function createAgent(url: URL, trust: TlsTrust, opts: AgentOptions = {}): http.Agent {
  const base: http.AgentOptions = { keepAlive: opts.keepAlive ?? true };
  if (opts.maxSockets !== undefined) base.maxSockets = opts.maxSockets;
  if (url.protocol !== 'https:') return new http.Agent(base);
  const pin = pinOf(trust, opts.backend);
  const tlsOpts = tlsOptions(trust);
  return pin ? new PinnedAgent({ ...base, ...tlsOpts }, pin, opts.backend) : new https.Agent({ ...base, ...tlsOpts });
}
