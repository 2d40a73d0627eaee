import { backoffDelay, NotFoundError, sleep } from '@vmplane/common';
import { type LxdEvent, nameFromUrl } from '@vmplane/lxd';
import type { LxdRef } from '../../model/instance.js';
import type { GuestChange, ObservedGuest } from '../provider.js';
import type { LxdContext } from './context.js';

/** The guest behind a lifecycle event, when it is an instance's (or its snapshot's, backup's, ...). */
export interface LifecycleTarget {
  name: string;
  action: string;
  /** instance-renamed: the name it had. */
  oldName?: string;
}

const INSTANCE_PATH = /^\/1\.0\/instances\/([^/?]+)/;

export function lifecycleTarget(event: LxdEvent): LifecycleTarget | undefined {
  if (event.type !== 'lifecycle') return undefined;
  const { action, source, context } = event.metadata;
  if (typeof action !== 'string' || !action.startsWith('instance-')) return undefined;
  const m = INSTANCE_PATH.exec(source ?? '');
  if (!m?.[0]) return undefined;
  const target: LifecycleTarget = { name: nameFromUrl(m[0]), action };
  const old = context?.old_name;
  if (action === 'instance-renamed' && typeof old === 'string' && old !== '') target.oldName = old;
  return target;
}

/** What a lifecycle action means for the guest list: only these three kinds exist in GuestChange. */
export function changeKind(action: string): GuestChange['kind'] {
  if (action === 'instance-created') return 'created';
  if (action === 'instance-deleted') return 'deleted';
  return 'updated'; // started, stopped, shutdown, paused, resumed, restarted, updated, snapshot-*, ...
}

export interface WatchDeps {
  ctx: LxdContext;
  /** The guest now, undefined when gone (one GET per event: events do not carry the state). */
  get(ref: LxdRef, signal: AbortSignal): Promise<ObservedGuest | undefined>;
  /** The last kind seen of a name (events do not say whether it is a container or a VM). */
  kindOf(name: string): LxdRef['kind'];
}

/**
 * LXD's lifecycle events of the project as GuestChanges, until `signal` aborts. The client's
 * EventStream reconnects by itself with capped backoff; when it gives up (an overflow, or a
 * failure it does not retry) a new stream is opened after a backoff of our own. Events of a gap
 * are not replayed: the engine's reconcile finds what changed meanwhile.
 */
export async function* watchGuests(deps: WatchDeps, signal: AbortSignal): AsyncGenerator<GuestChange> {
  const { ctx } = deps;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const lxd = await ctx.client({ signal });
      const events = lxd.events({ types: ['lifecycle'], signal });
      await events.ready();
      attempt = 0;
      for await (const event of events) {
        if (event.project && event.project !== ctx.project) continue;
        const target = lifecycleTarget(event);
        if (!target) continue;
        if (target.oldName !== undefined) {
          yield { kind: 'deleted', ref: refFor(ctx, target.oldName, deps.kindOf(target.oldName)) };
          yield await withGuest(deps, 'created', target.name, signal);
          continue;
        }
        const kind = changeKind(target.action);
        if (kind === 'deleted') yield { kind, ref: refFor(ctx, target.name, deps.kindOf(target.name)) };
        else yield await withGuest(deps, kind, target.name, signal);
      }
      if (signal.aborted) return;
    } catch {
      // An EventOverflowError (we fell behind), or a failure the stream does not retry itself (the
      // daemon restarting, say): a new stream starts after a backoff.
      if (signal.aborted) return;
    }
    try {
      await sleep(backoffDelay(attempt, { initial: 500, max: 30_000 }), signal);
    } catch {
      return;
    }
  }
}

function refFor(ctx: LxdContext, name: string, kind: LxdRef['kind']): LxdRef {
  return { type: 'lxd', project: ctx.project, name, kind };
}

async function withGuest(
  deps: WatchDeps,
  kind: 'created' | 'updated',
  name: string,
  signal: AbortSignal,
): Promise<GuestChange> {
  const ref = refFor(deps.ctx, name, deps.kindOf(name));
  try {
    const guest = await deps.get(ref, signal);
    // Gone by the time we asked: a delete event follows (or was first), say so at once.
    if (!guest) return { kind: 'deleted', ref };
    return { kind, ref: guest.ref, guest };
  } catch (error) {
    if (error instanceof NotFoundError) return { kind: 'deleted', ref };
    return { kind, ref };
  }
}
