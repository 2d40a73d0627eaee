import type { BusMessage } from '../engine/bus.js';
import type { StageDef } from '../engine/runner.js';
import { UnsupportedError } from '../errors.js';
import type { Instance, InstanceState } from '../model/instance.js';
import type { Provider } from '../providers/provider.js';
import type { Store } from '../store/contract.js';
import { CORE_UNDO, type InstallAllocator } from './install.js';

export interface ForkJob {
  source: Instance;
  provider: Provider;
  store: Store;
  allocator: InstallAllocator;
  name: string;
  instanceId: string;
  /** hypeman's `target_state`: the copy's state when it is made (default: the source's). */
  targetState?: InstanceState;
  publish(message: BusMessage): void;
}

/**
 * A fork: a new id for the copy (reserved first, with its undo), the backend's copy (LXD copy,
 * Proxmox full clone), the record, and the id handed to the new instance. The provider's own undo
 * covers a copy made half-way; core's covers the record and the id.
 */
export function forkStages(job: ForkJob): StageDef[] {
  const { provider, source } = job;
  let vmid: number | undefined;
  let made: Instance | undefined;
  return [
    {
      name: 'reserving id',
      successText: 'id reserved',
      async run(ctx) {
        await ctx.registerUndo(CORE_UNDO.releaseAllocations, { owner: ctx.operationId });
        const used = await provider.used({ signal: ctx.signal });
        const got = await job.allocator.reserve(ctx.operationId, { provider, used, signal: ctx.signal });
        vmid = got.vmid;
        return { message: `id ${got.vmid} reserved` };
      },
    },
    {
      name: 'forking',
      successText: `forked as ${job.name}`,
      async run(ctx) {
        if (!provider.fork) throw new UnsupportedError({ provider: provider.name, capability: 'fork' });
        const opts: Parameters<NonNullable<Provider['fork']>>[2] = { signal: ctx.signal };
        if (vmid !== undefined) opts.vmid = vmid;
        let ref = await provider.fork(source.ref, job.name, opts);
        if (ref.type === 'lxd' && vmid !== undefined) ref = { ...ref, vmid };
        await ctx.registerUndo(CORE_UNDO.deleteInstanceRecord, { id: job.instanceId });
        const seen = await provider.get(ref, { signal: ctx.signal });
        const now = new Date().toISOString();
        made = {
          id: job.instanceId,
          name: job.name,
          image: source.image,
          state: seen?.state ?? job.targetState ?? 'Stopped',
          env: { ...source.env },
          tags: { ...source.tags },
          created_at: now,
          expires_at: null,
          provider: provider.name,
          ref,
        };
        if (source.vcpus !== undefined) made.vcpus = source.vcpus;
        if (source.size !== undefined) made.size = source.size;
        if (seen?.ipv4) made.network = { enabled: true, ip: seen.ipv4 };
        await job.store.instances.insert(made);
        job.publish({ type: 'instance', instance: made });
        return undefined;
      },
    },
    {
      name: 'finalizing',
      successText: 'fork ready',
      async run(ctx) {
        const copy = made;
        if (copy && job.targetState === 'Running' && copy.state !== 'Running') {
          await provider.start(copy.ref, { signal: ctx.signal });
          await provider.waitReady(copy.ref, { signal: ctx.signal, timeout: 5 * 60_000 });
          const next = await job.store.instances.update(copy.id, {
            state: 'Running',
            started_at: new Date().toISOString(),
          });
          if (next) job.publish({ type: 'instance', instance: next });
        }
        await job.store.allocations.transfer(ctx.operationId, job.instanceId);
        return undefined;
      },
    },
  ];
}

/** A snapshot of an instance, taken, restored or deleted, each one stage. */
export function snapshotStages(job: {
  instance: Instance;
  provider: Provider;
  store: Store;
  action: 'create' | 'restore' | 'delete';
  name: string;
  stateful: boolean;
  publish(message: BusMessage): void;
}): StageDef[] {
  const { provider, instance, name } = job;
  const need = (has: unknown) => {
    if (typeof has !== 'function')
      throw new UnsupportedError({
        provider: provider.name,
        capability: job.action === 'restore' ? 'snapshot-restore' : 'snapshots',
      });
  };
  return [
    {
      name: `${job.action === 'create' ? 'taking' : job.action === 'restore' ? 'restoring' : 'deleting'} snapshot ${name}`,
      async run(ctx) {
        if (job.action === 'create') {
          need(provider.snapshot);
          await provider.snapshot?.(instance.ref, name, { signal: ctx.signal, stateful: job.stateful });
          const next = await job.store.instances.update(instance.id, { has_snapshot: true });
          if (next) job.publish({ type: 'instance', instance: next });
        } else if (job.action === 'restore') {
          need(provider.restoreSnapshot);
          await provider.restoreSnapshot?.(instance.ref, name, { signal: ctx.signal });
        } else {
          need(provider.deleteSnapshot);
          await provider.deleteSnapshot?.(instance.ref, name, { signal: ctx.signal });
        }
        return undefined;
      },
    },
  ];
}
