import { type Logger, sleep } from '@vmplane/common';
import type { EventBus } from '../engine/bus.js';
import { type Instance, refKey } from '../model/instance.js';
import type { ObservedGuest, Provider } from '../providers/provider.js';
import type { Store } from '../store/contract.js';

export interface StateSyncOptions {
  store: Store;
  bus: EventBus;
  providers: readonly Provider[];
  logger: Logger;
  /** Every provider is listed this often (Proxmox: `cluster/resources`); default 2 s, so outside changes show within 5 s. */
  intervalMs?: number;
  /** Instances an operation is working on: their state is the operation's to set. */
  busy: (instanceId: string) => boolean;
}

/**
 * Keeps the store's instances current with what the backends show, so that reads never call a
 * backend. Two sources: each provider's change feed (LXD's lifecycle events), which triggers a
 * prompt re-list, and a periodic list of every provider, which also covers providers without one.
 */
export class StateSync {
  readonly #o: StateSyncOptions;
  readonly #controller = new AbortController();
  readonly #loops: Promise<void>[] = [];
  readonly #wake = new Map<string, () => void>();

  constructor(opts: StateSyncOptions) {
    this.#o = opts;
  }

  start(): void {
    for (const p of this.#o.providers) {
      this.#loops.push(this.#pollLoop(p));
      if (p.watch) this.#loops.push(this.#watchLoop(p));
    }
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    for (const wake of this.#wake.values()) wake();
    await Promise.allSettled(this.#loops);
  }

  /** One pass over one provider, now: what tests and the loops call. */
  async reconcile(provider: Provider): Promise<void> {
    const signal = this.#controller.signal;
    const observed = await provider.list({ signal, timeout: 30_000 });
    const byKey = new Map<string, ObservedGuest>(observed.map((g) => [refKey(g.ref), g]));
    for (const instance of await this.#o.store.instances.list({ provider: provider.name })) {
      if (this.#o.busy(instance.id)) continue;
      const seen = byKey.get(refKey(instance.ref));
      if (!seen) {
        // Deleted outside vmplane: the record goes, and so do the id and address it held.
        if (await this.#o.store.instances.delete(instance.id)) {
          await this.#o.store.allocations.releaseOwner(instance.id);
          this.#o.bus.publish({ type: 'instance-deleted', instance });
        }
        continue;
      }
      const change = changeFrom(instance, seen);
      if (!change) continue;
      const next = await this.#o.store.instances.update(instance.id, change);
      if (next) this.#o.bus.publish({ type: 'instance', instance: next });
    }
  }

  async #pollLoop(p: Provider): Promise<void> {
    const signal = this.#controller.signal;
    while (!signal.aborted) {
      try {
        await this.reconcile(p);
      } catch (error) {
        if (!signal.aborted) this.#o.logger.warn('reconcile failed', { provider: p.name, error: String(error) });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#o.intervalMs ?? 2000);
        this.#wake.set(p.name, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async #watchLoop(p: Provider): Promise<void> {
    const signal = this.#controller.signal;
    while (!signal.aborted) {
      try {
        for await (const _change of p.watch?.(signal) ?? []) this.#wake.get(p.name)?.();
      } catch (error) {
        if (!signal.aborted) this.#o.logger.warn('watch ended', { provider: p.name, error: String(error) });
      }
      await sleep(1000, signal).catch(() => undefined);
    }
  }
}

/** What to change in the record so that it says what the backend shows; undefined when it does. */
function changeFrom(instance: Instance, seen: ObservedGuest): Partial<Omit<Instance, 'id'>> | undefined {
  const change: Partial<Omit<Instance, 'id'>> = {};
  // Running on the backend while the record says Initializing: readiness, not the backend, promotes it.
  const state = seen.state === 'Running' && instance.state === 'Initializing' ? 'Initializing' : seen.state;
  if (state !== instance.state) {
    change.state = state;
    const now = new Date().toISOString();
    if (state === 'Stopped' || state === 'Shutdown') change.stopped_at = now;
    if (state === 'Running') change.started_at = now;
    if (state === 'Unknown') change.state_error = `the backend reports ${seen.backendStatus}`;
  }
  if (seen.ipv4 && seen.ipv4 !== instance.network?.ip)
    change.network = { ...instance.network, enabled: true, ip: seen.ipv4 };
  if (refKey(seen.ref) === refKey(instance.ref) && JSON.stringify(seen.ref) !== JSON.stringify(instance.ref))
    change.ref = seen.ref; // migrated to another node
  return Object.keys(change).length > 0 ? change : undefined;
}
