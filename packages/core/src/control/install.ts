import { randomBytes } from 'node:crypto';
import type { StageDef } from '../engine/runner.js';
import type { StageContext } from '../engine/stage.js';
import type { Instance } from '../model/instance.js';
import type {
  InstallPlan,
  InstallSpec,
  InstallStageName,
  InstallState,
  Provider,
  StageOutcome,
  UsedResources,
} from '../providers/provider.js';
import type { Store } from '../store/contract.js';

/** go-pve-qemu's install stages, in its order. */
export const INSTALL_STAGES: readonly InstallStageName[] = [
  'preparation > checking VMID',
  'preparation > assigning IP',
  'preparation > validating CPU and RAM',
  'preparation > validating disk size',
  'preparation > setting default config values',
  'preparation > checking storage pool',
  'OS preparation > getting OS image',
  'OS preparation > validating OS image URL',
  'OS preparation > downloading OS image',
  'SSH preparation > checking SSH key',
  'VM creation > creating VM',
  'VM creation > importing disk image',
  'VM initialization > initializing configuration',
  'VM initialization > migrating VM',
  'VM initialization > waiting for ready',
  'VM initialization > SSH initialization',
  'VM initialization > rebooting VM',
  'VM initialization > finalizing',
];

/** What each stage's opening and success events say, in go-pve-qemu's words. */
export const INSTALL_TEXTS: Readonly<Record<InstallStageName, { start: string; success: string }>> = {
  'preparation > checking VMID': { start: 'check VMID', success: 'VMID checked' },
  'preparation > assigning IP': { start: 'assign IP', success: 'IP assigned' },
  'preparation > validating CPU and RAM': { start: 'validate CPU and RAM', success: 'CPU and RAM validated' },
  'preparation > validating disk size': { start: 'validate disk size', success: 'disk size validated' },
  'preparation > setting default config values': {
    start: 'set default config values',
    success: 'default config values set',
  },
  'preparation > checking storage pool': { start: 'check storage pool', success: 'storage pool is available' },
  'OS preparation > getting OS image': { start: 'get OS image download link', success: 'OS image URL obtained' },
  'OS preparation > validating OS image URL': {
    start: 'check OS image URL availability',
    success: 'OS image URL is valid',
  },
  'OS preparation > downloading OS image': {
    start: 'start downloading OS image',
    success: 'completed OS image download',
  },
  'SSH preparation > checking SSH key': { start: 'SSH preparation', success: 'completed SSH preparation' },
  'VM creation > creating VM': { start: 'VM creation', success: 'VM created successfully' },
  'VM creation > importing disk image': { start: 'import disk image', success: 'disk image imported successfully' },
  'VM initialization > initializing configuration': {
    start: 'initializing VM',
    success: 'VM initialized successfully',
  },
  'VM initialization > migrating VM': { start: 'migrate VM', success: 'VM migrated successfully' },
  'VM initialization > waiting for ready': { start: 'VM starting', success: 'VM started successfully' },
  'VM initialization > SSH initialization': { start: 'SSH initialization', success: 'SSH initialization completed' },
  'VM initialization > rebooting VM': { start: 'VM rebooting', success: 'VM rebooted' },
  'VM initialization > finalizing': { start: 'finalizing', success: 'VM is ready' },
};

/** Reserves what an install needs before anything is made: a numeric id and, where the provider wants one, an IPv4 address. */
export interface InstallAllocator {
  reserve(
    owner: string,
    req: { provider: Provider; requestedId?: number; used: UsedResources; signal: AbortSignal },
  ): Promise<{ vmid: number; ipv4?: string }>;
  release(owner: string): Promise<void>;
}

export interface InstallJob {
  provider: Provider;
  spec: InstallSpec;
  requestedId?: number;
  allocator: InstallAllocator;
  store: Store;
  /** Called when the instance record changes, so live readers see it. */
  onInstance(instance: Instance): void;
  /** hypeman's fields the record starts with. */
  record?: Partial<Pick<Instance, 'env' | 'tags' | 'image' | 'size' | 'vcpus' | 'expires_at'>>;
}

/** The undo kinds core itself registers (providers register their own). */
export const CORE_UNDO = {
  releaseAllocations: 'core.release-allocations',
  deleteInstanceRecord: 'core.delete-instance-record',
} as const;

/** A short, URL-safe instance id, as hypeman's are opaque strings. */
export function newInstanceId(): string {
  return randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').toLowerCase();
}

/**
 * The stages of one install: the provider's plan, with core's parts around it. Core reserves the
 * id and address (first, with its undo), writes the instance record once the guest exists, moves
 * it through Created → Initializing → Running, and hands the allocations to the instance at the end.
 */
export function installStages(job: InstallJob, state: InstallState, ids: { instanceId: string }): StageDef[] {
  const plan: InstallPlan = job.provider.install(job.spec);
  let record: Instance | undefined;
  const update = async (change: Partial<Omit<Instance, 'id'>>) => {
    const next = await job.store.instances.update(ids.instanceId, change);
    if (next) {
      record = next;
      job.onInstance(next);
    }
  };

  const wrap = (name: InstallStageName, around?: (ctx: StageContext) => Promise<StageOutcome | undefined>) => ({
    name,
    async run(ctx: StageContext): Promise<StageOutcome | undefined> {
      const before = around ? await around(ctx) : undefined;
      const own = await plan[name](ctx, state);
      return mergeOutcome(before, own);
    },
  });

  return INSTALL_STAGES.map(
    (name): StageDef => ({
      ...stageFor(name),
      startText: INSTALL_TEXTS[name].start,
      successText: INSTALL_TEXTS[name].success,
    }),
  );

  function stageFor(name: InstallStageName): StageDef {
    switch (name) {
      case 'preparation > checking VMID':
        return wrap(name, async (ctx) => {
          // The undo first: a crash between the reservation and the next event must still free it.
          await ctx.registerUndo(CORE_UNDO.releaseAllocations, { owner: ctx.operationId });
          const used = await job.provider.used({ signal: ctx.signal });
          const req: Parameters<InstallAllocator['reserve']>[1] = { provider: job.provider, used, signal: ctx.signal };
          if (job.requestedId !== undefined) req.requestedId = job.requestedId;
          const got = await job.allocator.reserve(ctx.operationId, req);
          state.vmid = got.vmid;
          if (got.ipv4 !== undefined) state.ipv4 = got.ipv4;
          return {
            message:
              job.requestedId !== undefined ? `using specified VMID: ${got.vmid}` : `auto-assigned VMID: ${got.vmid}`,
          };
        });
      case 'preparation > assigning IP':
        return wrap(name, async () => (state.ipv4 ? { message: `assigned IP: ${state.ipv4}/24` } : undefined));
      case 'VM creation > creating VM':
        return {
          name,
          async run(ctx) {
            const own = await plan[name](ctx, state);
            if (!state.ref) throw new Error(`provider ${job.provider.name} created a guest without saying where`);
            // An LXD guest has no VMID of its own: the id vmplane allocated goes with its reference.
            if (state.ref.type === 'lxd' && state.vmid !== undefined) state.ref = { ...state.ref, vmid: state.vmid };
            await ctx.registerUndo(CORE_UNDO.deleteInstanceRecord, { id: ids.instanceId });
            const now = new Date().toISOString();
            record = {
              id: ids.instanceId,
              name: job.spec.name,
              image: job.record?.image ?? job.spec.image,
              state: 'Created',
              env: job.record?.env ?? job.spec.env ?? {},
              tags: job.record?.tags ?? job.spec.tags ?? {},
              created_at: now,
              expires_at: job.record?.expires_at ?? null,
              vcpus: job.spec.vcpus,
              size: job.record?.size ?? `${job.spec.memoryMiB}MB`,
              provider: job.provider.name,
              ref: state.ref,
              current_phase: name,
              current_phase_since: now,
            };
            if (state.ipv4) record.network = { enabled: true, ip: state.ipv4 };
            await job.store.instances.insert(record);
            job.onInstance(record);
            return own;
          },
        };
      case 'VM initialization > waiting for ready':
        return wrap(name, async () => {
          await update({ state: 'Initializing', current_phase: name, current_phase_since: new Date().toISOString() });
          return undefined;
        });
      case 'VM initialization > finalizing':
        return {
          name,
          async run(ctx) {
            const own = await plan[name](ctx, state);
            // The guest is the instance's now: its id and address go with it, not with the operation.
            await job.store.allocations.transfer(ctx.operationId, ids.instanceId);
            const now = new Date().toISOString();
            const change: Partial<Omit<Instance, 'id'>> = { state: 'Running', started_at: now, current_phase: 'ready' };
            if (state.ref) change.ref = state.ref;
            if (state.ipv4) change.network = { enabled: true, ip: state.ipv4 };
            await update(change);
            return own;
          },
        };
      default:
        return wrap(name);
    }
  }
}

function mergeOutcome(a: StageOutcome | undefined, b: StageOutcome | undefined): StageOutcome | undefined {
  if (!a) return b;
  if (!b) return a;
  const out: StageOutcome = { ...a, ...b };
  // Core's message (the VMID) wins over a provider's plain "skipped".
  if (a.message && b.skipped) {
    out.message = a.message;
    delete out.skipped;
  }
  return out;
}
