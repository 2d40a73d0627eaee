import { type CallOptions, callOptions, NotFoundError } from '@vmplane/common';
import type { LxdClient } from '@vmplane/lxd';
import { InvalidRequestError } from '../../errors.js';
import type { UndoHandler } from '../provider.js';
import type { LxdContext } from './context.js';
import { KEY_OPERATION } from './states.js';

/** Undo kinds this provider registers; the payloads are journal-safe (names and fingerprints only). */
export const UNDO_DELETE_INSTANCE = 'lxd.delete-instance';
export const UNDO_DELETE_IMAGE = 'lxd.delete-image';

export interface DeleteInstancePayload {
  project: string;
  name: string;
  /**
   * The install operation that creates it: an instance that does not carry it (someone else's of
   * the same name, made between our check and our create) is left alone.
   */
  operation?: string;
}

export interface DeleteImagePayload {
  project: string;
  fingerprint: string;
}

/**
 * Both handlers are idempotent: what is gone already is success, so one that ran before a crash
 * can run again. Each takes the project from its payload, which may be from an earlier
 * configuration than the provider's own.
 */
export function undoHandlers(ctx: LxdContext): Record<string, UndoHandler> {
  // A forced stop and delete can outlast the client's 30 s default: the engine's own bound, or ours.
  const bounded = (opts: CallOptions): CallOptions =>
    opts?.timeout === undefined ? ctx.long(opts?.signal) : callOptions(opts);
  return {
    [UNDO_DELETE_INSTANCE]: async (payload, given) => {
      const opts = bounded(given);
      const project = text(payload, 'project');
      const name = text(payload, 'name');
      const lxd = await inProject(ctx, project, opts);
      const operation = payload.operation;
      if (typeof operation === 'string') {
        try {
          const instance = await lxd.instances.get(name, callOptions(opts));
          if (instance.config?.[KEY_OPERATION] !== operation) return;
        } catch (error) {
          if (error instanceof NotFoundError) return;
          throw error;
        }
      }
      await deleteInstance(lxd, name, opts);
    },
    [UNDO_DELETE_IMAGE]: async (payload, given) => {
      const opts = bounded(given);
      const project = text(payload, 'project');
      const fingerprint = text(payload, 'fingerprint');
      const lxd = await inProject(ctx, project, opts);
      try {
        await lxd.images.get(fingerprint, callOptions(opts));
      } catch (error) {
        if (error instanceof NotFoundError) return;
        throw error;
      }
      // Only the install that downloaded the image registers this; still, another instance made
      // from it since (by anyone) keeps it. Undo runs newest first, so our own instance is gone.
      const users = await lxd.instances.list({ ...callOptions(opts), allProjects: true });
      if (users.some((i) => i.config?.['volatile.base_image'] === fingerprint)) return;
      try {
        await lxd.images.delete(fingerprint, callOptions(opts));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    },
  };
}

/** Stops (at once) and deletes; an instance that is gone already is success. */
export async function deleteInstance(lxd: LxdClient, name: string, opts: CallOptions): Promise<void> {
  try {
    await lxd.instances.delete(name, { ...callOptions(opts), force: true });
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
}

async function inProject(ctx: LxdContext, project: string, opts: CallOptions): Promise<LxdClient> {
  const lxd = await ctx.client(callOptions(opts));
  return project === ctx.project ? lxd : (await ctx.server(callOptions(opts))).withProject(project);
}

function text(payload: Record<string, unknown>, key: string): string {
  const value = payload?.[key];
  if (typeof value !== 'string' || value === '') {
    throw new InvalidRequestError({ message: `undo payload needs ${key}`, field: key });
  }
  return value;
}
