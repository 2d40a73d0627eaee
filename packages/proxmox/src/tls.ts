import { normaliseFingerprint as normalise, type TlsTrust } from '@vmplane/common';
import { BACKEND } from './errors.js';

/**
 * How the client trusts the PVE node's certificate: one of the trust policies of `@vmplane/common`
 * (the pin is checked after the handshake and before any request byte, cookie or token is sent).
 */
export interface TlsOptions extends Pick<TlsTrust, 'ca' | 'fingerprint' | 'insecure'> {
  /** PEM CA certificate(s) to trust instead of the system store (PVE's own /etc/pve/pve-root-ca.pem). */
  ca?: TlsTrust['ca'];
  /**
   * SHA-256 fingerprint of the server certificate (`AB:CD:...`, as PVE shows it, or bare hex).
   * The connection is accepted when the certificate matches it, whoever signed the certificate.
   * A mismatch is a FingerprintMismatchError (a ConnectionError with `sent: false`), never retried.
   */
  fingerprint?: string | undefined;
  /** Skip verification entirely. An explicit opt-in: prefer `ca` or `fingerprint`. */
  insecure?: boolean | undefined;
}

/** Lower-case hex without colons; refuses what is not a SHA-256 fingerprint (InvalidArgumentError). */
export function normaliseFingerprint(text: string): string {
  return normalise(text, 'fingerprint', BACKEND);
}

/** The trust policy of the client's options: only the TLS keys, nothing else of the bag. */
export function trustOf(opts: TlsOptions): TlsTrust {
  const trust: TlsTrust = {};
  if (opts.ca !== undefined) trust.ca = opts.ca;
  if (opts.fingerprint !== undefined) trust.fingerprint = normaliseFingerprint(opts.fingerprint);
  if (opts.insecure !== undefined) trust.insecure = opts.insecure;
  return trust;
}

export { FingerprintMismatchError } from '@vmplane/common';
