import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstanceName, checkSnapshotName } from '../names.js';
import type { LxdOperation, OperationProgress } from '../operation.js';
import { type LxdCallOptions, Resource } from '../resources/base.js';
import type { LxdTransport } from '../transport.js';
import type { ImageAlias, ImagesPost, ImagesPostSource } from '../types/api.js';
import { checkAliasName } from './aliases.js';
import { checkAliases, type ImageResult, type ImageSteps, underDeadline } from './steps.js';
import { checkFingerprint } from './validate.js';

/** Where to copy an image from: another LXD server or a SimpleStreams server. */
export interface ImageCopySource {
  /** `https://host:8443` (LXD) or a SimpleStreams URL (`http(s)://...`). */
  server: string;
  protocol?: 'lxd' | 'simplestreams' | undefined;
  alias?: string | undefined;
  fingerprint?: string | undefined;
  /** PEM of the server's certificate when it is not signed by a CA the daemon trusts. */
  certificate?: string | undefined;
  /** A secret from the other LXD server, for a private image. */
  secret?: string | undefined;
  /** `container` or `virtual-machine`, when an alias names both. */
  type?: 'container' | 'virtual-machine' | undefined;
  /** Project on the source LXD server. */
  project?: string | undefined;
}

export interface ImageCopyOptions extends LxdCallOptions {
  /** Aliases to point at the copy once it is here (as `lxc image copy --alias`). */
  aliases?: readonly (string | ImageAlias)[] | undefined;
  public?: boolean | undefined;
  /** Keep the image refreshed from its source (`lxc image copy --auto-update`). */
  autoUpdate?: boolean | undefined;
  profiles?: readonly string[] | undefined;
  /** LXD's download progress, from the operation's events. */
  onProgress?: ((progress: OperationProgress) => void) | undefined;
}

/** What to make an image of: an instance (stopped) or one of its snapshots. */
export interface ImagePublishSource {
  instance: string;
  snapshot?: string | undefined;
}

export interface ImagePublishOptions extends LxdCallOptions {
  /** Aliases to point at the new image (as `lxc publish --alias`). */
  aliases?: readonly (string | ImageAlias)[] | undefined;
  public?: boolean | undefined;
  /** Descriptive properties, e.g. `{ os: 'busybox', release: '1.35' }`. */
  properties?: Readonly<Record<string, string>> | undefined;
  /** `gzip` (LXD's default), `none`, `xz`, `zstd`, ... */
  compressionAlgorithm?: string | undefined;
  expiresAt?: Date | undefined;
  profiles?: readonly string[] | undefined;
  /** LXD's progress (packing, compressing), from the operation's events. */
  onProgress?: ((progress: OperationProgress) => void) | undefined;
}

/** Images made by LXD itself: copies from other servers and images of instances. */
export class ImageCopier extends Resource {
  readonly #steps: ImageSteps;

  constructor(transport: LxdTransport, steps: ImageSteps) {
    super(transport);
    this.#steps = steps;
  }

  /**
   * Copies an image from another LXD server or a SimpleStreams server into this one (LXD pulls
   * it), reporting LXD's download progress, then sets `aliases` on it. An abort leaves no image.
   */
  async copyFrom(source: ImageCopySource, opts: ImageCopyOptions = {}): Promise<ImageResult> {
    const body = copyBody(source, opts);
    return underDeadline(opts, async (d) => {
      const op = await this.operation('POST', '/1.0/images', { project: opts.project, signal: d.signal }, { body });
      return this.#steps.imageFrom(op, opts, d);
    });
  }

  /**
   * Makes an image of a stopped instance or of a snapshot (`lxc publish`), with properties and
   * aliases. An abort leaves no image.
   */
  async publish(source: ImagePublishSource, opts: ImagePublishOptions = {}): Promise<ImageResult> {
    const instance = checkInstanceName(source.instance, 'instance');
    const name = source.snapshot === undefined ? instance : `${instance}/${checkSnapshotName(source.snapshot)}`;
    checkAliases(opts.aliases);
    if (opts.expiresAt !== undefined && (!(opts.expiresAt instanceof Date) || Number.isNaN(opts.expiresAt.getTime()))) {
      throw new InvalidArgumentError({
        message: 'expiresAt is not a valid date',
        argument: 'expiresAt',
        backend: BACKEND,
      });
    }
    const body: ImagesPost = {
      source: { type: source.snapshot === undefined ? 'instance' : 'snapshot', name },
      public: opts.public ?? false,
    };
    if (opts.properties) body.properties = { ...opts.properties };
    if (opts.compressionAlgorithm) body.compression_algorithm = opts.compressionAlgorithm;
    if (opts.expiresAt) body.expires_at = opts.expiresAt.toISOString();
    if (opts.profiles) body.profiles = [...opts.profiles];
    return underDeadline(opts, async (d) => {
      const op = await this.operation('POST', '/1.0/images', { project: opts.project, signal: d.signal }, { body });
      return this.#steps.imageFrom(op, opts, d);
    });
  }

  /** Starts a copy (POST /1.0/images, source type image, mode pull) and returns its operation unwaited. */
  async startCopy(source: ImageCopySource, opts: Omit<ImageCopyOptions, 'onProgress'> = {}): Promise<LxdOperation> {
    return this.operation('POST', '/1.0/images', opts, { body: copyBody(source, opts) });
  }
}

/** The body of a copy (POST /1.0/images, source type image, mode pull), every field checked. */
function copyBody(source: ImageCopySource, opts: Omit<ImageCopyOptions, 'onProgress'>): ImagesPost {
  if (typeof source !== 'object' || source === null) {
    throw new InvalidArgumentError({ message: 'source is an object', argument: 'source', backend: BACKEND });
  }
  let server: URL;
  try {
    server = new URL(source.server);
  } catch (error) {
    throw new InvalidArgumentError({
      message: `Invalid server URL ${JSON.stringify(source.server)}`,
      argument: 'server',
      backend: BACKEND,
      cause: error,
    });
  }
  const protocol = source.protocol ?? 'lxd';
  if (protocol !== 'lxd' && protocol !== 'simplestreams') {
    throw new InvalidArgumentError({
      message: `protocol is 'lxd' or 'simplestreams', not ${JSON.stringify(protocol)}`,
      argument: 'protocol',
      backend: BACKEND,
    });
  }
  if (!['http:', 'https:'].includes(server.protocol) || (protocol === 'lxd' && server.protocol !== 'https:')) {
    throw new InvalidArgumentError({
      message: `An image server is https:// (LXD) or http(s):// (SimpleStreams), not ${server.protocol}`,
      argument: 'server',
      backend: BACKEND,
    });
  }
  if (!source.alias === !source.fingerprint) {
    throw new InvalidArgumentError({
      message: 'Give exactly one of alias and fingerprint',
      argument: 'source',
      backend: BACKEND,
    });
  }
  if (source.alias) checkAliasName(source.alias, 'alias');
  if (source.fingerprint) checkFingerprint(source.fingerprint);
  checkAliases(opts?.aliases);
  const src: ImagesPostSource = { type: 'image', mode: 'pull', server: source.server, protocol };
  if (source.alias) src.alias = source.alias;
  if (source.fingerprint) src.fingerprint = source.fingerprint;
  if (source.certificate) src.certificate = source.certificate;
  if (source.secret) src.secret = source.secret;
  if (source.type) src.image_type = source.type;
  if (source.project) src.project = source.project;
  const body: ImagesPost = { source: src, public: opts?.public === true, auto_update: opts?.autoUpdate === true };
  if (opts.profiles) body.profiles = [...opts.profiles];
  return body;
}
