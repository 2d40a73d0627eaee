import { type CallOptions, InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { GuestConfig } from '../guest-config.js';
import { firstNonLoopbackIp } from '../helpers.js';
import type { Task } from '../task.js';
import type { GuestNetworkInterface, LxcMigratePrecondition, LxcStatus, TermProxy } from '../types.js';
import type { Context } from './context.js';
import { type ConfigUpdateOptions, type ConfigValues, GuestApi } from './guest.js';

export interface LxcMigrateOptions extends CallOptions {
  /** Stop, move and start again (containers cannot migrate live). */
  restart?: boolean;
  /** Seconds to wait for the shutdown of a restart migration. */
  shutdownTimeout?: number;
  /** One storage id, or `src:dst,src2:dst2`. */
  targetStorage?: string;
  bwlimit?: number;
  online?: boolean;
}

/** One LXC container: `/nodes/{node}/lxc/{vmid}`. */
export class LxcApi extends GuestApi<LxcStatus> {
  readonly type = 'lxc' as const;

  constructor(ctx: Context, node: string, vmid: number) {
    super(ctx, node, vmid, 'lxc');
  }

  /** Changes config keys. LXC applies them synchronously (PUT): done when this resolves. */
  async updateConfig(values: ConfigValues, opts: ConfigUpdateOptions = {}): Promise<void> {
    await this.ctx.t.put(this.p('/config'), {
      ...opts,
      params: { ...values, delete: opts.delete?.length ? opts.delete.join(',') : undefined, digest: opts.digest },
    });
    this.invalidate();
  }

  /** The seed's UpdateVMResources: cores, memory and swap (MiB). */
  setResources(
    resources: { cores?: number; memoryMiB?: number; swapMiB?: number },
    opts: CallOptions = {},
  ): Promise<void> {
    return this.updateConfig({ cores: resources.cores, memory: resources.memoryMiB, swap: resources.swapMiB }, opts);
  }

  suspend(opts: CallOptions = {}): Promise<Task> {
    return this.task('POST', '/status/suspend', opts);
  }

  /** Migrates after checking the target; a running container needs `restart`. */
  async migrate(target: string, opts: LxcMigrateOptions = {}): Promise<Task> {
    await this.checkMigrationTarget(target, opts);
    const pre = await this.migratePrecondition(target, opts);
    const refused = pre['not-allowed-nodes']?.[target];
    if (refused) throw this.refusal(target, refused);
    if (pre.running && !opts.restart && !opts.online) {
      throw new InvalidArgumentError({
        message: `CT ${this.vmid} is running: pass restart: true (containers cannot migrate live)`,
        argument: 'restart',
        backend: BACKEND,
      });
    }
    const task = await this.task('POST', '/migrate', opts, {
      target,
      restart: opts.restart,
      timeout: opts.shutdownTimeout,
      'target-storage': opts.targetStorage,
      bwlimit: opts.bwlimit,
      online: opts.online,
    });
    this.ctx.invalidateNode(target);
    return task;
  }

  /** PVE's migration preconditions for this container (`GET .../migrate`), optionally for one target. */
  migratePrecondition(target?: string, opts: CallOptions = {}): Promise<LxcMigratePrecondition> {
    return this.ctx.t.get<LxcMigratePrecondition>(this.p('/migrate'), { ...opts, params: { target } });
  }

  /** Converts the container to a template; PVE does this synchronously. */
  async template(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.post(this.p('/template'), opts);
    this.invalidate();
  }

  /** The running container's interfaces, as LXC reports them. */
  interfaces(opts: CallOptions = {}): Promise<GuestNetworkInterface[]> {
    return this.ctx.t.get<GuestNetworkInterface[]>(this.p('/interfaces'), opts);
  }

  async ip(opts: CallOptions = {}): Promise<string | undefined> {
    return firstNonLoopbackIp(await this.interfaces(opts));
  }

  termProxy(opts: CallOptions = {}): Promise<TermProxy> {
    return this.ctx.t.post<TermProxy>(this.p('/termproxy'), opts);
  }

  protected async interfacesIfAvailable(
    _config: GuestConfig,
    opts: CallOptions,
  ): Promise<GuestNetworkInterface[] | undefined> {
    try {
      return await this.interfaces(opts);
    } catch (error) {
      if (error instanceof Error && 'status' in error) return undefined;
      throw error;
    }
  }
}
