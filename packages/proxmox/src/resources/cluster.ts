import { type CallOptions, path } from '@vmplane/common';
import { aggregateCluster, type Cluster, type ClusterGuest, clusterStatusFrom } from '../aggregate.js';
import { forEachLimit } from '../concurrency.js';
import { parseGuestConfig, type RawConfig } from '../guest-config.js';
import { firstNonLoopbackIp } from '../helpers.js';
import { optionalEnum, optionalInteger, optionalVmid } from '../ids.js';
import { callOptions, options, readOptions } from '../options.js';
import type { ReadOptions } from '../transport.js';
import type {
  ClusterResource,
  ClusterResourceType,
  ClusterStatus,
  ClusterStatusEntry,
  GuestNetworkInterface,
  NodeStatus,
  TaskSummary,
  Version,
} from '../types.js';
import { isAgentUnavailable } from './agent.js';
import type { Context } from './context.js';
import { isContainerNotRunning } from './lxc.js';

export interface ClusterViewOptions extends ReadOptions {
  /** Requests in flight during enrichment (default 8). */
  concurrency?: number;
  /** Ask running guests for their addresses (QEMU agent, LXC interfaces); default true. */
  addresses?: boolean;
}

/**
 * A cluster view that is returned at once and enriched in the background. Each change produces a
 * new frozen Cluster; objects handed out earlier are never modified.
 */
export class ClusterView {
  /** The first view: from /cluster/status and /cluster/resources only. */
  readonly initial: Cluster;
  /** Resolves with the fully enriched view (guests with failed enrichment carry `enrichError`). */
  readonly enriched: Promise<Cluster>;
  #latest: Cluster;
  #done = false;
  readonly #listeners = new Set<() => void>();
  readonly #abort = new AbortController();

  /** @internal */
  constructor(
    initial: Cluster,
    run: (view: ClusterView, signal: AbortSignal) => Promise<Cluster>,
    signal?: AbortSignal | undefined,
  ) {
    this.initial = initial;
    this.#latest = initial;
    // The caller's signal stops the enrichment too, like cancel().
    const onAbort = () => this.#abort.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.enriched = run(this, this.#abort.signal).finally(() => {
      signal?.removeEventListener('abort', onAbort);
      this.#done = true;
      this.#notify();
    });
    // Callers that only read `initial` must not see an unhandled rejection.
    this.enriched.catch(() => {});
  }

  /** The most recent view. */
  get latest(): Cluster {
    return this.#latest;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Stops enrichment; `enriched` then rejects with the abort reason. */
  cancel(): void {
    this.#abort.abort();
  }

  /** @internal */
  publish(view: Cluster): void {
    this.#latest = view;
    this.#notify();
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }

  /** Each newer view as it comes (coalesced when the reader is slower), ending once enrichment is done. */
  async *updates(): AsyncGenerator<Cluster, void, undefined> {
    let seen: Cluster | undefined;
    let wake: (() => void) | undefined;
    const listener = () => wake?.();
    this.#listeners.add(listener);
    try {
      for (;;) {
        if (this.#latest !== seen) {
          seen = this.#latest;
          yield seen;
          continue;
        }
        if (this.#done) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }
}

/** `/cluster`: status, resources, tasks, version, next free VMID, and the aggregated views. */
export class ClusterApi {
  private readonly ctx: Context;

  /** @internal */
  constructor(ctx: Context) {
    this.ctx = ctx;
  }

  /** The raw `/cluster/status` entries. */
  async statusEntries(opts: ReadOptions = {}): Promise<ClusterStatusEntry[]> {
    return this.ctx.t.get('/cluster/status', { ...readOptions(opts), cache: this.ctx.clusterCache() });
  }

  /** Quorum, nodes and their online state. `{ fresh: true }` is the seed's GetFreshClusterStatus. */
  async status(opts: ReadOptions = {}): Promise<ClusterStatus> {
    const s = clusterStatusFrom(await this.statusEntries(readOptions(opts)));
    return { ...s, totalNodes: s.nodes.length, onlineNodes: s.nodes.filter((n) => n.online).length };
  }

  async resources(opts: ReadOptions & { type?: 'vm' | 'storage' | 'node' | 'sdn' } = {}): Promise<ClusterResource[]> {
    opts = options(opts);
    return this.ctx.t.get('/cluster/resources', {
      ...readOptions(opts),
      params: { type: optionalEnum(opts.type, ['vm', 'storage', 'node', 'sdn'], 'type') },
      cache: this.ctx.clusterCache(),
    });
  }

  /** Resources of one kind, filtered locally (PVE's own filter knows only vm/storage/node/sdn). */
  async resourcesOf(type: ClusterResourceType, opts: ReadOptions = {}): Promise<ClusterResource[]> {
    return (await this.resources(readOptions(opts))).filter((r) => r.type === type);
  }

  async tasks(opts: CallOptions = {}): Promise<TaskSummary[]> {
    return this.ctx.t.get('/cluster/tasks', callOptions(opts));
  }

  async version(opts: ReadOptions = {}): Promise<Version> {
    return this.ctx.t.get('/version', { ...readOptions(opts), cache: this.ctx.clusterCache() });
  }

  /** The next free VMID (never cached); with `vmid`, checks that one is free (400 when taken). */
  async nextId(opts: CallOptions & { vmid?: number } = {}): Promise<number> {
    opts = options(opts);
    const params = { vmid: optionalVmid(opts.vmid) };
    return Number(await this.ctx.t.get<number | string>('/cluster/nextid', { ...callOptions(opts), params }));
  }

  /** The seed's aggregated Cluster from two requests: totals, nodes, guests, storage counted once. */
  async aggregate(opts: ReadOptions = {}): Promise<Cluster> {
    const read = readOptions(opts);
    const [status, resources] = await Promise.all([this.statusEntries(read), this.resources(read)]);
    return aggregateCluster(status, resources);
  }

  /**
   * The fast cluster view: the aggregated Cluster as soon as /cluster/status and /cluster/resources
   * answer, then node details, guest configs and guest addresses fetched in the background with
   * bounded concurrency. See ClusterView.
   */
  async view(opts: ClusterViewOptions = {}): Promise<ClusterView> {
    opts = options(opts);
    const concurrency = optionalInteger(opts.concurrency, 'concurrency', 1, 256) ?? 8;
    const addresses = opts.addresses ?? true;
    const read = readOptions(opts);
    const [status, resources] = await Promise.all([this.statusEntries(read), this.resources(read)]);
    const initial = aggregateCluster(status, resources);
    // `timeout` bounds each request; `signal` also stops the background enrichment.
    const call: ReadOptions = { fresh: read.fresh, timeout: read.timeout };
    return new ClusterView(
      initial,
      async (view, signal) => {
        const nodeDetails = new Map<string, NodeStatus>();
        const nodeErrors = new Map<string, string>();
        const guests = new Map(initial.guests.map((g) => [`${g.type}/${g.vmid}`, g]));
        const onlineNodes = new Set(initial.nodes.filter((n) => n.online).map((n) => n.name));
        let dirty = false;
        const rebuild = () => {
          dirty = false;
          view.publish(aggregateCluster(status, resources, { nodeDetails, nodeErrors, guests: [...guests.values()] }));
        };
        // Publishing after every answer would rebuild the view hundreds of times; batch per tick.
        const touch = () => {
          if (dirty) return;
          dirty = true;
          setImmediate(() => {
            if (dirty && !signal.aborted) rebuild();
          });
        };
        type Job = { kind: 'node'; name: string } | { kind: 'guest'; guest: ClusterGuest };
        const jobs: Job[] = [
          ...[...onlineNodes].map((name): Job => ({ kind: 'node', name })),
          ...initial.guests.filter((g) => onlineNodes.has(g.node)).map((guest): Job => ({ kind: 'guest', guest })),
        ];
        await forEachLimit(
          jobs,
          concurrency,
          async (job) => {
            const o = { ...call, signal };
            if (job.kind === 'node') {
              try {
                nodeDetails.set(
                  job.name,
                  await this.ctx.t.get<NodeStatus>(path`/nodes/${job.name}/status`, {
                    ...o,
                    cache: this.ctx.nodeCache(job.name),
                  }),
                );
              } catch (error) {
                if (signal.aborted) throw error;
                nodeErrors.set(job.name, error instanceof Error ? error.message : String(error));
              }
            } else {
              guests.set(`${job.guest.type}/${job.guest.vmid}`, await this.#enrichGuest(job.guest, addresses, o));
            }
            touch();
          },
          signal,
        );
        signal.throwIfAborted();
        // Guests on offline nodes cannot be enriched: mark them so the caller can tell.
        for (const [k, g] of guests) {
          if (!g.enriched && !g.enrichError)
            guests.set(k, Object.freeze({ ...g, enrichError: `node ${g.node} is offline` }));
        }
        rebuild();
        return view.latest;
      },
      opts.signal,
    );
  }

  async #enrichGuest(
    guest: ClusterGuest,
    addresses: boolean,
    o: ReadOptions & { signal: AbortSignal },
  ): Promise<ClusterGuest> {
    const base =
      guest.type === 'qemu'
        ? path`/nodes/${guest.node}/qemu/${guest.vmid}`
        : path`/nodes/${guest.node}/lxc/${guest.vmid}`;
    try {
      const raw = await this.ctx.t.get<RawConfig>(`${base}/config`, {
        ...o,
        cache: this.ctx.guestCache(guest.node, guest.vmid),
      });
      const config = parseGuestConfig(guest.type, raw);
      let interfaces: GuestNetworkInterface[] | undefined;
      let addressError: string | undefined;
      if (addresses && guest.status === 'running' && (guest.type === 'lxc' || config.agentEnabled)) {
        try {
          interfaces =
            guest.type === 'qemu'
              ? ((await this.ctx.t.get<{ result?: GuestNetworkInterface[] }>(`${base}/agent/network-get-interfaces`, o))
                  ?.result ?? [])
              : // PVE 9 answers null for a container that stopped since the resources were read.
                ((await this.ctx.t.get<GuestNetworkInterface[] | null>(`${base}/interfaces`, o)) ?? undefined);
        } catch (error) {
          if (o.signal.aborted) throw error;
          // A guest without a running agent simply has no addresses to tell; any other failure
          // (401, 403, a timeout of the agent) is said, while the config read stays.
          const unavailable =
            guest.type === 'qemu' ? isAgentUnavailable(error, guest.vmid) : isContainerNotRunning(error);
          if (!unavailable) addressError = error instanceof Error ? error.message : String(error);
        }
      }
      const ip = firstNonLoopbackIp(interfaces);
      return Object.freeze({
        ...guest,
        config,
        enriched: true,
        ...(interfaces ? { interfaces } : {}),
        ...(ip ? { ip } : {}),
        ...(addressError ? { enrichError: `addresses: ${addressError}` } : {}),
      });
    } catch (error) {
      if (o.signal.aborted) throw error;
      return Object.freeze({
        ...guest,
        enriched: false,
        enrichError: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
