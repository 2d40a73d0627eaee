import { CoreError } from '../errors.js';

/** The image's name is not in the catalogue (`debian-99`, `fedora-40`). Nothing was fetched. */
export class UnknownImageError extends CoreError {
  override name = 'UnknownImageError';
  readonly code = 'invalid_request';
  readonly status = 400;
  readonly image: string;
  constructor(init: { image: string; known: readonly string[] }) {
    super({
      message: `unknown OS image ${JSON.stringify(init.image.slice(0, 80))}: known images are ${init.known.join(', ')}`,
    });
    this.image = init.image;
  }
}

/** The image's server did not answer as it should: unreachable, an error status, too slow, too big. */
export class ImageSourceError extends CoreError {
  override name = 'ImageSourceError';
  readonly code = 'image_source_unavailable';
  readonly status = 502;
  readonly url: string;
  /** The HTTP status it answered with, when it answered. */
  readonly httpStatus: number | undefined;
  constructor(init: { url: string; message: string; httpStatus?: number; cause?: unknown }) {
    super({ message: init.message, cause: init.cause });
    this.url = init.url;
    this.httpStatus = init.httpStatus;
  }
}

/** The checksum file was read but names no checksum for the image's file. */
export class ChecksumNotFoundError extends CoreError {
  override name = 'ChecksumNotFoundError';
  readonly code = 'checksum_not_found';
  readonly status = 502;
  readonly file: string;
  readonly checksumUrl: string;
  constructor(init: { file: string; checksumUrl: string }) {
    super({ message: `${init.checksumUrl} lists no checksum for ${init.file}` });
    this.file = init.file;
    this.checksumUrl = init.checksumUrl;
  }
}
