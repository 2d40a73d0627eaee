export {
  type CatalogueImage,
  type CatalogueOptions,
  ImageCatalogue,
  type OsName,
  type PackageManager,
} from './catalogue.js';
export { type ChecksumAlgorithm, type ChecksumEntry, type ChecksumFormat, parseChecksums } from './checksums.js';
export { ChecksumNotFoundError, ImageSourceError, UnknownImageError } from './errors.js';
export { checkImageUrl, fetchChecksum, type ImageFetchOptions } from './fetch.js';
