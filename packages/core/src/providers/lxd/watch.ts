import { backoffDelay, sleep } from '@vmplane/common';
import { type LxdEvent, nameFromUrl } from '@vmplane/lxd';
import type { LxdRef } from '../../model/instance.js';
import type { GuestChange } from '../provider.js';
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
  /** The last kind seen of a name (events do not say whether it is a container or a VM). */
  kindOf(name: string): LxdRef['kind'];
}

/**
 * LXD's lifecycle events of the project as GuestChanges, until `signal` aborts. Events carry no
 * state, and the contract's `guest` is for what is known without another call, so changes come
 * without it (a reader that wants the guest reads it, or reconciles); `event` names LXD's action.
 *
 * The client's EventStream reconnects by itself with capped backoff; when it gives up (an
 * overflow, or a failure it does not retry) a new stream is opened after a backoff of our own.
 * Events of a gap are not replayed: the engine's reconcile finds what changed meanwhile.
 */
export async function* watchGuests(deps: WatchDeps, signal: AbortSignal): AsyncGenerator<GuestChange> {
  const { ctx } = deps;
  const ref = (name: string): LxdRef => ({ type: 'lxd', project: ctx.project, name, kind: deps.kindOf(name) });
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
          yield { kind: 'deleted', ref: ref(target.oldName), event: target.action };
          yield { kind: 'created', ref: ref(target.name), event: target.action };
        } else {
          yield { kind: changeKind(target.action), ref: ref(target.name), event: target.action };
        }
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
