import { InvalidArgumentError, PreconditionFailedError, path } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { etagOf } from '../etag.js';
import { checkImageAlias, listEncodingOf, namesFromUrls } from '../names.js';
import { found, type LxdCallOptions, Resource, type UpdateOptions } from '../resources/base.js';
import type { ImageAliasesEntry, ImageAliasesEntryPut } from '../types/api.js';
import { checkFingerprint } from './validate.js';

/**
 * Alias names may hold '/' (`debian/12`) and are not limited in length (LXD 5.0.2 keeps 1000
 * characters); they may not be empty, `.` or `..`, nor hold NUL or control characters.
 */
export function checkAliasName(name: unknown, argument = 'alias'): string {
  return checkImageAlias(name, argument);
}

export interface AliasCreate {
  name: string;
  /** Fingerprint (or unique prefix) of the image. */
  target: string;
  description?: string | undefined;
  /** `container` or `virtual-machine`; LXD takes the image's type when omitted. */
  type?: 'container' | 'virtual-machine' | undefined;
}

/** Image aliases: `client.images.aliases`. */
export class ImageAliases extends Resource {
  private item(name: string): string {
    return path`/1.0/images/aliases/${checkAliasName(name)}`;
  }

  async names(opts: LxdCallOptions = {}): Promise<string[]> {
    // LXD 5.0.2 escapes alias names twice in these URLs (`a%252Fb` for `a/b`).
    return namesFromUrls(
      await this.call<string[]>('GET', '/1.0/images/aliases', opts, {}),
      listEncodingOf('image alias'),
    );
  }

  async list(opts: LxdCallOptions = {}): Promise<ImageAliasesEntry[]> {
    return this.call('GET', '/1.0/images/aliases', opts, { query: { recursion: 1 } });
  }

  /** One alias; `etagOf(result)` gives its ETag for `update`. */
  async get(name: string, opts: LxdCallOptions = {}): Promise<ImageAliasesEntry> {
    return this.read<ImageAliasesEntry>(this.item(name), opts, {});
  }

  async exists(name: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return found(this.get(name, opts));
  }

  async create(alias: AliasCreate, opts: LxdCallOptions = {}): Promise<void> {
    checkAliasName(alias?.name);
    checkFingerprint(alias.target, 'target');
    if (alias.description !== undefined && typeof alias.description !== 'string') {
      throw new InvalidArgumentError({
        message: 'description must be a string',
        argument: 'description',
        backend: BACKEND,
      });
    }
    if (alias.type !== undefined && alias.type !== 'container' && alias.type !== 'virtual-machine') {
      throw new InvalidArgumentError({
        message: 'type is container or virtual-machine',
        argument: 'type',
        backend: BACKEND,
      });
    }
    const body: Record<string, string> = {
      name: alias.name,
      target: alias.target,
      description: alias.description ?? '',
    };
    if (alias.type) body.type = alias.type;
    await this.call('POST', '/1.0/images/aliases', opts, { body });
  }

  /** Replaces target and description; with `etag`, fails with 412 if the alias changed since it was read. */
  async update(name: string, put: Required<ImageAliasesEntryPut>, opts: UpdateOptions = {}): Promise<void> {
    checkFingerprint(put?.target, 'target');
    await this.call('PUT', this.item(name), opts, { body: put, etag: opts?.etag });
  }

  /**
   * Merges the given fields into the alias. Done as GET + PUT with If-Match rather than PATCH:
   * LXD 5.0.2's alias PATCH handler deadlocks on its database and fails after 10 s with
   * "context deadline exceeded". With `etag`, fails with 412 if the alias changed since then;
   * without, a concurrent change between our GET and PUT is retried.
   */
  async patch(name: string, put: ImageAliasesEntryPut, opts: UpdateOptions = {}): Promise<void> {
    if (put?.target !== undefined) checkFingerprint(put.target, 'target');
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(name, opts);
      const etag = opts.etag ?? etagOf(current);
      const merged = { target: put.target ?? current.target, description: put.description ?? current.description };
      try {
        await this.update(name, merged, { ...opts, etag });
        return;
      } catch (error) {
        if (opts.etag || attempt >= 2 || !(error instanceof PreconditionFailedError)) throw error;
      }
    }
  }

  /** Renames the alias. (LXD 5.0.2 answers this only after about 10 s; the rename itself is done.) */
  async rename(name: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkAliasName(newName, 'newName');
    await this.call('POST', this.item(name), opts, { body: { name: newName } });
  }

  async delete(name: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', this.item(name), opts, {});
  }

  /**
   * Points `name` at `target`, creating the alias or moving it (as `lxc image copy --alias` and
   * `lxc image alias` do when the alias exists).
   */
  async set(alias: AliasCreate, opts: LxdCallOptions = {}): Promise<void> {
    try {
      await this.create(alias, opts);
    } catch (error) {
      if ((error as { status?: number }).status !== 409) throw error;
      await this.patch(alias.name, { target: alias.target }, opts);
    }
  }
}
