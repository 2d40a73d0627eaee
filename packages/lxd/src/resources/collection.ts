import { path } from '@vmplane/common';
import { checkName, listEncodingOf, type NameKind, namesFromUrls } from '../names.js';
import {
  found,
  type ListOptions,
  type LxdCallOptions,
  listParts,
  type RequestParts,
  Resource,
  type UpdateOptions,
} from './base.js';

/** The kinds of name of the collections built on Collection. */
export type CollectionKind = Extract<NameKind, 'profile' | 'network' | 'storage pool' | 'project' | 'certificate name'>;

/**
 * The shape most LXD collections share (profiles, networks, pools, projects, ...):
 * GET list (names or objects), GET one with ETag, POST create, PUT/PATCH with If-Match,
 * POST rename, DELETE. Subclasses add what is particular to them.
 */
export class Collection<T extends object, TCreate, TPut> extends Resource {
  protected readonly base: string;
  /** Which name rule the collection's names follow. */
  protected readonly kind: CollectionKind;
  /** Objects outside projects (projects, certificates) are asked for with no project at all. */
  protected readonly global: boolean;

  constructor(
    transport: ConstructorParameters<typeof Resource>[0],
    base: string,
    kind: CollectionKind,
    opts: { global?: boolean } = {},
  ) {
    super(transport);
    this.base = base;
    this.kind = kind;
    this.global = opts.global === true;
  }

  protected item(name: string): string {
    return this.base + path`/${checkName(this.kind, name, 'name')}`;
  }

  /** A request's parts, with no project for objects outside projects. */
  protected parts(parts: RequestParts = {}): RequestParts {
    return this.global ? { ...parts, project: null } : parts;
  }

  /** Names only (recursion=0). */
  async names(opts: ListOptions = {}): Promise<string[]> {
    const urls = await this.call<string[]>('GET', this.base, opts, this.parts(listParts(opts, 0)));
    return namesFromUrls(urls, listEncodingOf(this.kind));
  }

  /** Full objects (recursion=1). */
  async list(opts: ListOptions = {}): Promise<T[]> {
    return this.call<T[]>('GET', this.base, opts, this.parts(listParts(opts, 1)));
  }

  /** One object; its ETag is kept for `etagOf`. */
  async get(name: string, opts: LxdCallOptions = {}): Promise<T> {
    return this.read<T>(this.item(name), opts, this.parts());
  }

  async exists(name: string, opts: LxdCallOptions = {}): Promise<boolean> {
    return found(this.get(name, opts));
  }

  async create(body: TCreate, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('POST', this.base, opts, this.parts({ body }));
  }

  /** Replaces the writable fields; pass `etag` to fail with 412 if it changed meanwhile. */
  async update(name: string, body: TPut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PUT', this.item(name), opts, this.parts({ body, etag: opts?.etag }));
  }

  /** Merges the given fields into the object. */
  async patch(name: string, body: Partial<TPut>, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PATCH', this.item(name), opts, this.parts({ body, etag: opts?.etag }));
  }

  /**
   * Renames, and returns once it is done: LXD 5.0 answers a project's rename with an operation
   * (202) and others' at once, so an operation, when there is one, is waited for.
   */
  async rename(name: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkName(this.kind, newName, 'newName');
    await this.maybeOperationDone('POST', this.item(name), opts, this.parts({ body: { name: newName } }));
  }

  async delete(name: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', this.item(name), opts, this.parts());
  }
}
