import { type CallOptions, NotFoundError } from '@vmplane/common';
import { LxdClient } from '@vmplane/lxd';
import { InvalidRequestError } from '../../errors.js';
import type { InstallSpec } from '../provider.js';
import type { LxdImageServer, LxdProviderOptions } from './context.js';

/**
 * How an install's image reference is read:
 *
 * - `<remote>:<alias>`, `<remote>` a key of `imageServers`: that server's alias.
 * - a local alias, or a local fingerprint (or unique prefix of one);
 * - `<os>-<version>` (`debian-12`, go-pve-qemu's style): the alias `<os>/<version>`, locally;
 * - otherwise, when `defaultImageServer` is set: the alias (or `<os>/<version>`) there.
 */
export interface ImageRequest {
  /** The remote, when the reference names one or none of the local candidates exists. */
  remote?: { name: string; server: LxdImageServer; alias: string };
  /** Local aliases or fingerprints to try, in order. */
  local: string[];
  /** The alias to ask the default server for. */
  alias: string;
}

const OS_VERSION = /^([a-z][a-z0-9]*)-(\d[0-9a-z.]*)$/;
const FINGERPRINT = /^[0-9a-f]{6,64}$/;

export function parseImage(image: string, options: LxdProviderOptions): ImageRequest {
  if (typeof image !== 'string' || image.trim() === '') {
    throw new InvalidRequestError({ message: 'image must name an image', field: 'image' });
  }
  const servers = options.imageServers ?? {};
  const colon = image.indexOf(':');
  if (colon > 0) {
    const name = image.slice(0, colon);
    const server = Object.hasOwn(servers, name) ? servers[name] : undefined;
    const alias = image.slice(colon + 1);
    if (server) {
      if (alias === '') throw new InvalidRequestError({ message: `image ${image} names no alias`, field: 'image' });
      return { remote: { name, server, alias }, local: [], alias };
    }
  }
  const osVersion = OS_VERSION.exec(image);
  const alias = osVersion ? `${osVersion[1]}/${osVersion[2]}` : image;
  return { local: osVersion ? [image, alias] : [image], alias };
}

/** The default image server, checked to be configured. */
export function defaultRemote(options: LxdProviderOptions, alias: string): ImageRequest['remote'] {
  const name = options.defaultImageServer;
  if (name === undefined) return undefined;
  const server = options.imageServers?.[name];
  if (!server) {
    throw new InvalidRequestError({
      message: `defaultImageServer ${name} is not one of imageServers`,
      field: 'defaultImageServer',
    });
  }
  return { name, server, alias };
}

/** A local image: its fingerprint and what named it. */
export interface LocalImage {
  fingerprint: string;
  via: string;
  type: string;
}

/** The first local candidate that exists, as an alias or a fingerprint. */
export async function findLocal(
  lxd: LxdClient,
  candidates: readonly string[],
  opts: CallOptions,
): Promise<LocalImage | undefined> {
  for (const candidate of candidates) {
    try {
      const alias = await lxd.images.aliases.get(candidate, opts);
      const image = await lxd.images.get(alias.target, opts);
      return { fingerprint: image.fingerprint, via: `alias ${candidate}`, type: image.type };
    } catch (error) {
      if (!(error instanceof NotFoundError) && !isRefusedName(error)) throw error;
    }
    if (FINGERPRINT.test(candidate)) {
      try {
        const image = await lxd.images.get(candidate, opts);
        return { fingerprint: image.fingerprint, via: `fingerprint ${candidate}`, type: image.type };
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
  }
  return undefined;
}

/** A reference that is no valid alias name simply is not a local alias. */
function isRefusedName(error: unknown): boolean {
  return error instanceof Error && error.name === 'InvalidArgumentError';
}

export function lxdType(kind: InstallSpec['kind']): 'container' | 'virtual-machine' {
  return kind === 'vm' ? 'virtual-machine' : 'container';
}

/**
 * Asks the remote what its alias names (for this machine's architecture and the instance's
 * type): the fingerprint LXD will pull. The server answering is the validation.
 */
export async function remoteFingerprint(
  remote: NonNullable<ImageRequest['remote']>,
  kind: InstallSpec['kind'],
  opts: CallOptions,
): Promise<string> {
  const { server, alias } = remote;
  if (server.protocol === 'simplestreams') {
    const ss = LxdClient.connectSimpleStreams(
      server.url,
      server.certificate === undefined ? {} : { serverCert: server.certificate },
    );
    try {
      return (await ss.getAlias(alias, { ...opts, type: lxdType(kind) })).target;
    } finally {
      ss.close();
    }
  }
  const other = await LxdClient.connect({
    url: server.url,
    skipGetServer: true,
    ...(server.certificate === undefined ? {} : { serverCert: server.certificate }),
  });
  try {
    const entry = await other.images.aliases.get(alias, opts);
    return entry.target;
  } finally {
    other.close();
  }
}
