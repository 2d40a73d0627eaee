import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';

const FINGERPRINT = /^[0-9a-fA-F]{1,64}$/;

/** A fingerprint or a prefix of one (LXD resolves unique prefixes): hex, 1 to 64 digits. */
export function checkFingerprint(value: unknown, argument = 'fingerprint'): string {
  if (typeof value !== 'string' || !FINGERPRINT.test(value)) {
    throw new InvalidArgumentError({
      message: `Invalid image fingerprint ${JSON.stringify(value)}: 1-64 hex digits`,
      argument,
      backend: BACKEND,
    });
  }
  return value.toLowerCase();
}
