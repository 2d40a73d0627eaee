import type { CallOptions, Logger } from '@vmplane/common';
import { silentLogger } from '@vmplane/common';
import { type BusListener, type BusMessage, EventBus } from '../engine/bus.js';
import { Engine, type StageDef, type Started, type StartRequest } from '../engine/runner.js';
import type { OperationEvent } from '../engine/stage.js';
import {
  AmbiguousError,
  InvalidRequestError,
  InvalidStateError,
  NotFoundInStoreError,
  UnsupportedError,
} from '../errors.js';
import type { Instance, InstanceState } from '../model/instance.js';
import { assertCanDo, type InstanceAction } from '../model/transitions.js';
import type { ExecRequest, GuestProcess, GuestStats, NodeCapacity, PathInfo, Provider } from '../providers/provider.js';
import type { InstanceFilter, OperationRecord, OperationStatus, Store } from '../store/contract.js';
import type { ControlPlaneApi, InstallRequest, LifecycleAction, ProviderInfo } from './api.js';
import { forkStages, snapshotStages } from './fork.js';
import { CORE_UNDO, type InstallAllocator, installStages, newInstanceId } from './install.js';
import { lifecycleStages, resizeStages } from './lifecycle.js';
import { ProviderRegistry } from './providers.js';
import { StateSync } from './sync.js';

export interface ControlPlaneOptions {
  store: Store;
  providers: readonly Provider[];
  defaultProvider?: string;
  allocator: InstallAllocator;
  logger?: Logger;
  /** How often every provider is listed to reconcile state (ms). */
  reconcileIntervalMs?: number;
  /** An install's whole deadline (ms); default 20 minutes. */
  installTimeoutMs?: number;
  /** A guest's readiness deadline on start and reboot (ms); default 5 minutes. */
  readyTimeoutMs?: number;
}

const ENDED: ReadonlySet<OperationStatus> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/**
 * The control plane: one instance API over every configured provider. Reads come from the store,
 * which StateSync keeps current; every change runs as a journalled operation with undo.
 */
export class ControlPlane implements ControlPlaneApi {
  readonly store: Store;
  readonly bus = new EventBus();
  readonly engine: Engine;
  readonly registry: ProviderRegistry;
  readonly #allocator: InstallAllocator;
  readonly #logger: Logger;
  readonly #sync: StateSync;
  readonly #busy = new Map<string, number>();
  readonly #o: ControlPlaneOptions;

  constructor(opts: ControlPlaneOptions) {
    this.#o = opts;
    this.store = opts.store;
    this.#allocator = opts.allocator;
    this.#logger = opts.logger ?? silentLogger;
    this.registry = new ProviderRegistry(opts.providers, opts.defaultProvider);
    this.engine = new Engine({
      store: opts.store,
      bus: this.bus,
      logger: this.#logger,
      undo: (kind, op) => {
        if (kind === CORE_UNDO.releaseAllocations)
          return async (payload) => this.#allocator.release(String(payload.owner));
        if (kind === CORE_UNDO.deleteInstanceRecord)
          return async (payload) => {
            const id = String(payload.id);
            const gone = await this.store.instances.find(id);
            if (gone && gone.id === id && (await this.store.instances.delete(id)))
              this.bus.publish({ type: 'instance-deleted', instance: gone });
          };
        const provider = op.provider === undefined ? undefined : this.registry.get(op.provider);
        return provider?.undo[kind];
      },
    });
    const syncOpts: ConstructorParameters<typeof StateSync>[0] = {
      store: opts.store,
      bus: this.bus,
      providers: opts.providers,
      logger: this.#logger,
      busy: (id) => (this.#busy.get(id) ?? 0) > 0,
    };
    if (opts.reconcileIntervalMs !== undefined) syncOpts.intervalMs = opts.reconcileIntervalMs;
    this.#sync = new StateSync(syncOpts);
  }

  /** Finishes what a killed process left (undo from the persisted intents), then starts watching. */
  async start(): Promise<OperationRecord[]> {
    const recovered = await this.engine.recover();
    this.#sync.start();
    return recovered;
  }

  /** SIGTERM: running operations are stopped and undone, the watchers end. */
  async close(): Promise<void> {
    await this.engine.shutdown();
    await this.#sync.stop();
  }

  /** One reconcile pass over every provider, now. */
  async reconcile(): Promise<void> {
    for (const p of this.registry.all()) await this.#sync.reconcile(p);
  }

  listInstances(filter?: InstanceFilter): Promise<Instance[]> {
    return this.store.instances.list(filter);
  }

  async getInstance(idOrName: string): Promise<Instance> {
    const exact = await this.store.instances.find(idOrName);
    if (exact) {
      if (exact.id === idOrName) return exact;
      const named = (await this.store.instances.list()).filter((i) => i.name === idOrName);
      if (named.length > 1) throw new AmbiguousError({ message: `more than one instance is named ${idOrName}` });
      return exact;
    }
    const prefixed =
      idOrName.length > 0 ? (await this.store.instances.list()).filter((i) => i.id.startsWith(idOrName)) : [];
    if (prefixed.length === 1 && prefixed[0]) return prefixed[0];
    if (prefixed.length > 1) throw new AmbiguousError({ message: `more than one instance id starts with ${idOrName}` });
    throw new NotFoundInStoreError({ what: 'instance', key: idOrName });
  }

  async install(req: InstallRequest): Promise<Started> {
    const provider = this.registry.resolve(req.provider);
    ProviderRegistry.require(provider, 'install');
    ProviderRegistry.require(provider, req.spec.kind === 'vm' ? 'vms' : 'containers');
    const instanceId = newInstanceId();
    const state: Parameters<typeof installStages>[1] = {};
    const job: Parameters<typeof installStages>[0] = {
      provider,
      spec: req.spec,
      allocator: this.#allocator,
      store: this.store,
      onInstance: (instance) => this.bus.publish({ type: 'instance', instance }),
    };
    if (req.requestedId !== undefined) job.requestedId = req.requestedId;
    if (req.record) job.record = req.record;
    const { password: _secret, ...safeSpec } = req.spec;
    const start: StartRequest = {
      kind: 'install',
      request: { ...safeSpec, ...(req.requestedId === undefined ? {} : { id: req.requestedId }), instanceId },
      instanceId,
      provider: provider.name,
      stages: installStages(job, state, { instanceId }),
      secrets: req.spec.password ? [req.spec.password] : [],
      timeoutMs: this.#o.installTimeoutMs ?? 20 * 60_000,
      eventFields: () => {
        const f: { vmId?: number; ip?: string } = {};
        if (state.vmid !== undefined) f.vmId = state.vmid;
        if (state.ipv4 !== undefined) f.ip = state.ipv4;
        return f;
      },
      opening: { step: '', message: '[*] start VM installation' },
      onSuccess: async () => {
        const result: Record<string, unknown> = { instanceId };
        if (state.vmid !== undefined) result.vmId = state.vmid;
        if (state.ipv4 !== undefined) result.ip = state.ipv4;
        return result;
      },
    };
    if (req.summary)
      start.closing = (seconds) => [
        { step: 'VM initialization > finalizing', message: `[+] VM installation completed in ${seconds.toFixed(2)}s` },
        { step: 'VM initialization > finalizing', message: `[*] VMID: ${state.vmid ?? ''}` },
        { step: 'VM initialization > finalizing', message: `[*] IP: ${state.ipv4 ?? ''}` },
        { step: 'VM initialization > finalizing', message: `[*] User: ${req.spec.user ?? ''}` },
      ];
    if (req.idempotency) start.idempotency = req.idempotency;
    // After the key: a replay whose instance exists by now gets its operation back.
    start.precheck = async () => {
      if ((await this.store.instances.list()).some((i) => i.name === req.spec.name))
        throw new InvalidRequestError({ message: `an instance named ${req.spec.name} exists`, field: 'name' });
    };
    return this.#startBusy(instanceId, start);
  }

  async createInstance(req: InstallRequest): Promise<{ instance: Instance; operation: OperationRecord }> {
    const started = await this.install(req);
    const instanceId = String(started.operation.request.instanceId ?? started.operation.instanceId ?? '');
    // Resolves as soon as the record exists (the guest is made), or when the install ends first.
    const instance = await new Promise<Instance | undefined>((resolve) => {
      const stop = this.bus.subscribe((m) => {
        if (m.type === 'instance' && m.instance.id === instanceId) {
          stop();
          resolve(m.instance);
        }
      });
      void this.store.instances.find(instanceId).then((i) => {
        if (i && i.id === instanceId) {
          stop();
          resolve(i);
        }
      });
      void this.engine.finished(started.operation.id).then(async () => {
        stop();
        const i = await this.store.instances.find(instanceId);
        resolve(i && i.id === instanceId ? i : undefined);
      });
    });
    if (instance) return { instance, operation: started.operation };
    const op = await this.getOperation(started.operation.id);
    throw new InvalidRequestError({ message: op.error?.message ?? 'the instance could not be created' });
  }

  async act(idOrName: string, action: LifecycleAction, opts: { force?: boolean; waitReady?: boolean } = {}) {
    const instance = await this.getInstance(idOrName);
    assertCanDo(action === 'destroy' ? 'delete' : (action as InstanceAction), instance.state);
    const provider = this.#providerOf(instance);
    if (action === 'standby' || action === 'restore') ProviderRegistry.require(provider, 'standby');
    const stages = lifecycleStages({
      action,
      instance,
      provider,
      store: this.store,
      allocator: this.#allocator,
      publish: (m: BusMessage) => this.bus.publish(m),
      force: opts.force ?? false,
      waitReady: opts.waitReady ?? true,
      readyTimeoutMs: this.#o.readyTimeoutMs ?? 5 * 60_000,
    });
    return this.#startBusy(instance.id, {
      kind: action,
      request: { instance: instance.id, ...(opts.force ? { force: true } : {}) },
      instanceId: instance.id,
      provider: provider.name,
      stages,
    });
  }

  async resize(idOrName: string, change: { vcpus?: number; memoryMiB?: number; growDiskGiB?: number; node?: string }) {
    const instance = await this.getInstance(idOrName);
    const provider = this.#providerOf(instance);
    const stages = resizeStages({ instance, provider, store: this.store, change, publish: (m) => this.bus.publish(m) });
    return this.#startBusy(instance.id, {
      kind: change.node !== undefined ? 'migrate' : 'resize',
      request: { instance: instance.id, ...change },
      instanceId: instance.id,
      provider: provider.name,
      stages,
    });
  }

  async fork(idOrName: string, req: { name: string; fromRunning?: boolean; targetState?: InstanceState }) {
    const source = await this.getInstance(idOrName);
    if (source.state === 'Running' && !req.fromRunning)
      throw new InvalidStateError({
        state: source.state,
        action: 'fork',
        message:
          'invalid state transition: cannot fork from state Running (set from_running=true to allow standby+restore flow)',
      });
    assertCanDo('fork', source.state);
    const provider = this.#providerOf(source);
    ProviderRegistry.require(provider, 'fork');
    if ((await this.store.instances.list()).some((i) => i.name === req.name))
      throw new InvalidRequestError({ message: `an instance named ${req.name} exists`, field: 'name' });
    const instanceId = newInstanceId();
    const job: Parameters<typeof forkStages>[0] = {
      source,
      provider,
      store: this.store,
      allocator: this.#allocator,
      name: req.name,
      instanceId,
      publish: (m) => this.bus.publish(m),
    };
    if (req.targetState !== undefined) job.targetState = req.targetState;
    const started = await this.#startBusy(source.id, {
      kind: 'fork',
      request: { instance: source.id, name: req.name, instanceId },
      instanceId,
      provider: provider.name,
      stages: forkStages(job),
    });
    const done = await this.engine.finished(started.operation.id);
    if (done?.status !== 'succeeded')
      throw new InvalidRequestError({ message: done?.error?.message ?? 'the fork failed' });
    return { instance: await this.getInstance(instanceId), operation: done };
  }

  async snapshot(
    idOrName: string,
    action: 'create' | 'restore' | 'delete',
    name: string,
    opts: { stateful?: boolean } = {},
  ) {
    const instance = await this.getInstance(idOrName);
    if (action === 'create') assertCanDo('snapshot', instance.state);
    const provider = this.#providerOf(instance);
    ProviderRegistry.require(provider, action === 'restore' ? 'snapshot-restore' : 'snapshots');
    return this.#startBusy(instance.id, {
      kind: `snapshot-${action}`,
      request: { instance: instance.id, name },
      instanceId: instance.id,
      provider: provider.name,
      stages: snapshotStages({
        instance,
        provider,
        store: this.store,
        action,
        name,
        stateful: opts.stateful ?? false,
        publish: (m) => this.bus.publish(m),
      }),
    });
  }

  async updateInstance(idOrName: string, change: { env?: Record<string, string>; expires_at?: string | null }) {
    const instance = await this.getInstance(idOrName);
    const next: Partial<Omit<Instance, 'id'>> = {};
    if (change.env) next.env = { ...instance.env, ...change.env };
    if (change.expires_at !== undefined) next.expires_at = change.expires_at;
    const updated = await this.store.instances.update(instance.id, next);
    if (!updated) throw new NotFoundInStoreError({ what: 'instance', key: idOrName });
    this.bus.publish({ type: 'instance', instance: updated });
    return updated;
  }

  async waitForState(idOrName: string, state: InstanceState, opts: CallOptions & { timeoutMs: number }) {
    const first = await this.getInstance(idOrName);
    const result = (i: Instance, timedOut: boolean) => {
      const r: { state: InstanceState; timed_out: boolean; state_error?: string } = {
        state: i.state,
        timed_out: timedOut,
      };
      if (i.state_error !== undefined) r.state_error = i.state_error;
      return r;
    };
    if (first.state === state) return result(first, false);
    return new Promise<{ state: InstanceState; timed_out: boolean; state_error?: string }>((resolve, reject) => {
      let last = first;
      const finish = (value: ReturnType<typeof result> | Error) => {
        clearTimeout(timer);
        stop();
        opts.signal?.removeEventListener('abort', onAbort);
        if (value instanceof Error) reject(value);
        else resolve(value);
      };
      const stop = this.bus.subscribe((m) => {
        if (m.type === 'instance' && m.instance.id === first.id) {
          last = m.instance;
          if (m.instance.state === state) finish(result(m.instance, false));
        } else if (m.type === 'instance-deleted' && m.instance.id === first.id) {
          finish(new NotFoundInStoreError({ what: 'instance', key: idOrName }));
        }
      });
      const timer = setTimeout(() => finish(result(last, true)), opts.timeoutMs);
      const onAbort = () => finish(result(last, true));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async exec(idOrName: string, request: ExecRequest, opts?: CallOptions): Promise<GuestProcess> {
    const { instance, provider } = await this.#running(idOrName, 'exec');
    if (!provider.exec) throw new UnsupportedError({ provider: provider.name, capability: 'exec' });
    return provider.exec(instance.ref, request, opts);
  }

  async stat(idOrName: string, path: string, opts?: CallOptions): Promise<PathInfo> {
    const { instance, provider } = await this.#running(idOrName, 'exec');
    if (!provider.stat) throw new UnsupportedError({ provider: provider.name, capability: 'files' });
    return provider.stat(instance.ref, path, opts);
  }

  async readFile(idOrName: string, path: string, opts?: CallOptions): Promise<AsyncIterable<Uint8Array>> {
    const { instance, provider } = await this.#running(idOrName, 'exec');
    if (!provider.readFile) throw new UnsupportedError({ provider: provider.name, capability: 'files' });
    return provider.readFile(instance.ref, path, opts);
  }

  async writeFile(idOrName: string, path: string, data: Uint8Array, opts?: CallOptions & { mode?: number }) {
    const { instance, provider } = await this.#running(idOrName, 'exec');
    if (!provider.writeFile) throw new UnsupportedError({ provider: provider.name, capability: 'files' });
    await provider.writeFile(instance.ref, path, data, opts);
  }

  async stats(idOrName: string, opts?: CallOptions): Promise<GuestStats> {
    const instance = await this.getInstance(idOrName);
    const provider = this.#providerOf(instance);
    if (!provider.stats) throw new UnsupportedError({ provider: provider.name, capability: 'stats' });
    return provider.stats(instance.ref, opts);
  }

  async *consoleLog(idOrName: string, opts: CallOptions & { follow?: boolean }): AsyncIterable<string> {
    const instance = await this.getInstance(idOrName);
    const provider = this.#providerOf(instance);
    if (!provider.consoleLog) throw new UnsupportedError({ provider: provider.name, capability: 'console-log' });
    yield* provider.consoleLog(instance.ref, opts);
  }

  async getOperation(id: string): Promise<OperationRecord> {
    const op = await this.store.operations.get(id);
    if (!op) throw new NotFoundInStoreError({ what: 'operation', key: id });
    return op;
  }

  listOperations(filter?: { status?: OperationStatus; instanceId?: string; limit?: number }) {
    return this.store.operations.list(filter);
  }

  async cancelOperation(id: string): Promise<OperationRecord> {
    await this.getOperation(id);
    const op = await this.engine.cancel(id);
    if (!op) throw new NotFoundInStoreError({ what: 'operation', key: id });
    return op;
  }

  async *operationEvents(
    id: string,
    opts: { afterSeq?: number; signal?: AbortSignal; follow?: boolean },
  ): AsyncIterable<OperationEvent> {
    await this.getOperation(id);
    // Subscribe before reading the journal, so that nothing written in between is missed.
    const live: OperationEvent[] = [];
    let ended = false;
    let wake: (() => void) | undefined;
    const stop = this.bus.subscribe((m) => {
      if (m.type === 'operation-event' && m.event.operationId === id) live.push(m.event);
      else if (m.type === 'operation' && m.operation.id === id && ENDED.has(m.operation.status)) ended = true;
      else return;
      wake?.();
    });
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      let last = opts.afterSeq ?? 0;
      for (const e of await this.store.operations.events(id, last)) {
        yield e;
        last = e.seq;
      }
      const op = await this.getOperation(id);
      if (ENDED.has(op.status)) ended = true;
      while (opts.follow !== false && !opts.signal?.aborted) {
        while (live.length > 0) {
          const e = live.shift();
          if (e && e.seq > last) {
            yield e;
            last = e.seq;
          }
        }
        if (ended) {
          // The journal is the record: read what the bus may have delivered out of reach.
          for (const e of await this.store.operations.events(id, last)) {
            yield e;
            last = e.seq;
          }
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      stop();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  subscribe(listener: BusListener): () => void {
    return this.bus.subscribe(listener);
  }

  async providers(opts?: CallOptions): Promise<ProviderInfo[]> {
    return Promise.all(
      this.registry.all().map(async (p) => {
        const probe = await p.probe(opts).catch((e: unknown) => ({ reachable: false, error: String(e) }) as const);
        const info: ProviderInfo = {
          name: p.name,
          type: p.type,
          capabilities: [...p.capabilities],
          reachable: probe.reachable,
          default: p.name === this.registry.defaultName,
        };
        if ('version' in probe && probe.version !== undefined) info.version = probe.version;
        if ('error' in probe && probe.error !== undefined) info.error = probe.error;
        return info;
      }),
    );
  }

  async nodes(opts?: CallOptions): Promise<Array<NodeCapacity & { provider: string }>> {
    const all = await Promise.all(
      this.registry.all().map(async (p) => (await p.nodes(opts)).map((n) => ({ ...n, provider: p.name }))),
    );
    return all.flat();
  }

  async #running(idOrName: string, action: InstanceAction) {
    const instance = await this.getInstance(idOrName);
    assertCanDo(action, instance.state);
    return { instance, provider: this.#providerOf(instance) };
  }

  #providerOf(instance: Instance): Provider {
    const p = this.registry.get(instance.provider);
    if (!p)
      throw new InvalidRequestError({
        message: `instance ${instance.name} belongs to provider ${instance.provider}, which is not configured`,
      });
    return p;
  }

  async #startBusy(instanceId: string, req: StartRequest): Promise<Started> {
    this.#busy.set(instanceId, (this.#busy.get(instanceId) ?? 0) + 1);
    const release = () => {
      const n = (this.#busy.get(instanceId) ?? 1) - 1;
      if (n <= 0) this.#busy.delete(instanceId);
      else this.#busy.set(instanceId, n);
    };
    try {
      const started = await this.engine.start(req);
      if (started.existing) release();
      else void this.engine.finished(started.operation.id).finally(release);
      return started;
    } catch (error) {
      release();
      throw error;
    }
  }
}

export type { StageDef };
