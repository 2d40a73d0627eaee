import type { BusMessage } from '../engine/bus.js';
import type { StageDef } from '../engine/runner.js';
import { ReadinessTimeoutError, UnsupportedError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import { RESULT } from '../model/transitions.js';
import type { Provider } from '../providers/provider.js';
import type { Store } from '../store/contract.js';
import type { LifecycleAction } from './api.js';
import type { InstallAllocator } from './install.js';

interface LifecycleJob {
  action: LifecycleAction;
  instance: Instance;
  provider: Provider;
  store: Store;
  allocator: InstallAllocator;
  publish(message: BusMessage): void;
  force: boolean;
  /** Start and reboot wait until the guest takes commands, as go-pve-qemu's do. */
  waitReady: boolean;
  readyTimeoutMs: number;
}

/**
 * The stages of a lifecycle action, named as go-pve-qemu's start and reboot streams name them
 * (`starting VM`, `waiting for SSH`, `finalizing`), each moving the record through the states.
 */
export function lifecycleStages(job: LifecycleJob): StageDef[] {
  const { instance, provider } = job;
  const set = async (change: Partial<Omit<Instance, 'id'>>) => {
    const next = await job.store.instances.update(instance.id, change);
    if (next) job.publish({ type: 'instance', instance: next });
  };
  const now = () => new Date().toISOString();
  const ready: StageDef = {
    name: 'waiting for SSH',
    startText: 'waiting for the guest to take commands',
    successText: 'VM is ready',
    async run(ctx) {
      try {
        await provider.waitReady(instance.ref, { signal: ctx.signal, timeout: job.readyTimeoutMs });
      } catch (error) {
        // A deadline is an error event, never a success.
        if (error instanceof Error && error.name === 'TimeoutError')
          throw new ReadinessTimeoutError({ message: `the guest did not answer within ${job.readyTimeoutMs / 1000}s` });
        throw error;
      }
      await set({ state: 'Running', current_phase: 'ready', current_phase_since: now() });
      return undefined;
    },
  };
  const finalizing = (text: string): StageDef => ({
    name: 'finalizing',
    startText: 'finalizing',
    successText: text,
    successStatus: 'info',
    async run() {
      return undefined;
    },
  });

  switch (job.action) {
    case 'start':
      return [
        {
          name: 'starting VM',
          startText: 'VM starting',
          successText: 'VM starting',
          async run(ctx) {
            await provider.start(instance.ref, { signal: ctx.signal });
            await set({ state: job.waitReady ? 'Initializing' : 'Running', started_at: now(), current_phase: 'boot' });
            return undefined;
          },
        },
        ...(job.waitReady ? [ready] : []),
        finalizing('VM started successfully'),
      ];
    case 'reboot':
      return [
        {
          name: 'rebooting VM',
          startText: 'VM rebooting',
          successText: 'VM rebooting',
          async run(ctx) {
            await provider.reboot(instance.ref, { signal: ctx.signal });
            await set({ state: 'Initializing', current_phase: 'boot', current_phase_since: now() });
            return undefined;
          },
        },
        ready,
        finalizing('VM rebooted successfully'),
      ];
    case 'stop':
    case 'shutdown':
      return [
        {
          name: job.action === 'stop' ? 'stopping VM' : 'shutting down VM',
          successText: job.action === 'stop' ? 'VM stopped' : 'VM shut down',
          async run(ctx) {
            await provider.stop(instance.ref, { signal: ctx.signal, force: job.action === 'stop' && job.force });
            await set({ state: 'Stopped', stopped_at: now() });
            return undefined;
          },
        },
      ];
    case 'standby':
    case 'restore': {
      const action = job.action;
      const act = action === 'standby' ? provider.standby : provider.resume;
      return [
        {
          name: action === 'standby' ? 'standing by VM' : 'restoring VM',
          async run(ctx) {
            if (!act) throw new UnsupportedError({ provider: provider.name, capability: 'standby' });
            await act.call(provider, instance.ref, { signal: ctx.signal });
            const state = RESULT[action];
            if (state) await set({ state });
            return undefined;
          },
        },
      ];
    }
    case 'destroy':
      return [
        {
          name: 'destroying VM',
          successText: 'VM destroyed',
          async run(ctx) {
            await provider.destroy(instance.ref, { signal: ctx.signal });
            if (await job.store.instances.delete(instance.id)) job.publish({ type: 'instance-deleted', instance });
            // Only now, with the guest gone, may its id and address go to another.
            await job.allocator.release(instance.id);
            return undefined;
          },
        },
      ];
  }
}

/** go-pve-qemu's set/cpu, set/memory, set/disk (grow by) and set/node, each one stage. */
export function resizeStages(job: {
  instance: Instance;
  provider: Provider;
  store: Store;
  change: { vcpus?: number; memoryMiB?: number; growDiskGiB?: number; node?: string };
  publish(message: BusMessage): void;
}): StageDef[] {
  const { instance, provider, change } = job;
  const need = (has: unknown, capability: string) => {
    if (typeof has !== 'function') throw new UnsupportedError({ provider: provider.name, capability });
  };
  const stages: StageDef[] = [];
  if (change.vcpus !== undefined) {
    const vcpus = change.vcpus;
    stages.push({
      name: 'setting CPU',
      successText: `CPU set to ${vcpus}`,
      async run(ctx) {
        need(provider.setCpu, 'resize-cpu');
        await provider.setCpu?.(instance.ref, vcpus, { signal: ctx.signal });
        const next = await job.store.instances.update(instance.id, { vcpus });
        if (next) job.publish({ type: 'instance', instance: next });
        return undefined;
      },
    });
  }
  if (change.memoryMiB !== undefined) {
    const mib = change.memoryMiB;
    stages.push({
      name: 'setting memory',
      successText: `memory set to ${mib} MB`,
      async run(ctx) {
        need(provider.setMemory, 'resize-memory');
        await provider.setMemory?.(instance.ref, mib, { signal: ctx.signal });
        const next = await job.store.instances.update(instance.id, { size: `${mib}MB` });
        if (next) job.publish({ type: 'instance', instance: next });
        return undefined;
      },
    });
  }
  if (change.growDiskGiB !== undefined) {
    const by = change.growDiskGiB;
    stages.push({
      name: 'growing disk',
      successText: `disk grown by ${by}G`,
      async run(ctx) {
        need(provider.growDisk, 'grow-disk');
        await provider.growDisk?.(instance.ref, by, { signal: ctx.signal });
        return undefined;
      },
    });
  }
  if (change.node !== undefined) {
    const node = change.node;
    stages.push({
      name: 'migrating',
      startText: `migrate VM to node ${node}`,
      successText: `VM migrated to node ${node} successfully`,
      async run(ctx) {
        need(provider.migrate, 'migrate');
        const ref = await provider.migrate?.(instance.ref, node, { signal: ctx.signal });
        if (ref) {
          const next = await job.store.instances.update(instance.id, { ref });
          if (next) job.publish({ type: 'instance', instance: next });
        }
        return undefined;
      },
    });
  }
  return stages;
}
