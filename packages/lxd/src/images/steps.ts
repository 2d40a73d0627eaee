import { type Deadline, InvalidArgumentError, path, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { LxdOperation, OperationProgress } from '../operation.js';
import { type LxdCallOptions, Resource } from '../resources/base.js';
import type { LxdTransport } from '../transport.js';
import type { ImageAlias, Operation } from '../types/api.js';
import { type AliasCreate, checkAliasName, type ImageAliases } from './aliases.js';
import { checkFingerprint } from './validate.js';

/** An image now on the server. */
export interface ImageResult {
  fingerprint: string;
  size: number;
  /** Aliases that were set on it. */
  aliases: string[];
}

/** Aliases to point at a new image: names, or names with a description. */
export type AliasList = readonly (string | ImageAlias)[] | undefined;

/** Refuses bad alias names before anything is sent. */
export function checkAliases(aliases: AliasList): void {
  if (aliases === undefined) return;
  if (!Array.isArray(aliases)) {
    throw new InvalidArgumentError({ message: 'aliases must be an array', argument: 'aliases', backend: BACKEND });
  }
  for (const a of aliases) checkAliasName(typeof a === 'string' ? a : a?.name, 'aliases');
}

/** What uploads, copies and publishes share once LXD has made (or is making) an image. */
export class ImageSteps extends Resource {
  readonly #aliases: ImageAliases;

  constructor(transport: LxdTransport, aliases: ImageAliases) {
    super(transport);
    this.#aliases = aliases;
  }

  /** Deletes an image and waits until it is gone. */
  async delete(fingerprint: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.operationDone('DELETE', path`/1.0/images/${checkFingerprint(fingerprint)}`, opts, {});
  }

  async setAliases(fingerprint: string, aliases: AliasList, opts: LxdCallOptions): Promise<string[]> {
    const names: string[] = [];
    for (const a of aliases ?? []) {
      const alias: AliasCreate =
        typeof a === 'string'
          ? { name: a, target: fingerprint }
          : { name: a.name, target: fingerprint, description: a.description };
      await this.#aliases.set(alias, opts);
      names.push(alias.name);
    }
    return names;
  }

  /** After an abort while LXD was still processing an upload or copy: delete what it makes. */
  removeWhenDone(op: LxdOperation, project: string | undefined): void {
    op.settled()
      .then((o) => {
        const fp = (o.metadata as { fingerprint?: unknown } | null)?.fingerprint;
        if (o.status_code === 200 && typeof fp === 'string' && fp) return this.delete(fp, { project });
        return undefined;
      })
      .catch(() => {});
  }

  /** Waits for an operation that makes an image, reporting progress; sets aliases on the result. */
  async imageFrom(
    op: LxdOperation,
    opts: {
      project?: string | undefined;
      aliases?: AliasList;
      onProgress?: ((progress: OperationProgress) => void) | undefined;
    },
    d: Deadline,
  ): Promise<ImageResult> {
    const watching = new AbortController();
    if (opts.onProgress) {
      const onProgress = opts.onProgress;
      (async () => {
        for await (const p of op.progress({ signal: watching.signal })) onProgress(p);
      })().catch(() => {});
    }
    let done: Operation;
    try {
      done = await op.wait({ signal: d.signal });
    } catch (error) {
      if (d.reason()) {
        await op.cancel().catch(() => {});
        this.removeWhenDone(op, opts.project);
      }
      throw error;
    } finally {
      watching.abort();
    }
    const { fingerprint, size } = imageMade(done);
    const aliases = await this.setAliases(fingerprint, opts.aliases, { project: opts.project, signal: d.signal });
    return { fingerprint, size, aliases };
  }
}

/** The fingerprint and size LXD reports for the image an operation made ('' and 0 when it names none). */
export function imageMade(done: Operation): { fingerprint: string; size: number } {
  const metadata = done.metadata as { fingerprint?: unknown; size?: unknown } | null;
  return { fingerprint: String(metadata?.fingerprint ?? ''), size: Number(metadata?.size ?? 0) };
}

/** Runs an image call under the caller's deadline (never throws synchronously). */
export function underDeadline<T>(opts: LxdCallOptions, fn: (d: Deadline) => Promise<T>): Promise<T> {
  return withDeadline({ signal: opts?.signal, timeout: opts?.timeout }, BACKEND, fn);
}
