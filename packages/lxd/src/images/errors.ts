import { VmplaneError } from '@vmplane/common';

export interface ChecksumMismatchErrorInit {
  message: string;
  /** What was checked: 'image', 'metadata', 'rootfs', a file name. */
  subject: string;
  expected: string;
  actual: string;
  backend?: string | undefined;
}

/**
 * Bytes did not hash to what they should: an upload LXD fingerprinted differently than we did, an
 * export or a SimpleStreams download that arrived changed. Nothing that failed the check is kept.
 */
export class ChecksumMismatchError extends VmplaneError {
  override name = 'ChecksumMismatchError';
  readonly subject: string;
  /** The sha256 (hex) the bytes should have. */
  readonly expected: string;
  /** The sha256 (hex) they had. */
  readonly actual: string;

  constructor(init: ChecksumMismatchErrorInit) {
    super(init);
    this.subject = init.subject;
    this.expected = init.expected;
    this.actual = init.actual;
  }
}
