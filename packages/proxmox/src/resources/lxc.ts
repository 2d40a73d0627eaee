import { type CallOptions, InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { GuestConfig } from '../guest-config.js';
import { firstNonLoopbackIp } from '../helpers.js';
import { checkNode, checkStoragePairs, optionalInteger } from '../ids.js';
import { callOptions, options } from '../options.js';
import type { Task } from '../task.js';
import type { GuestNetworkInterface, LxcMigratePrecondition, LxcStatus, TermProxy } from '../types.js';
import { pveMessageOf } from './agent.js';
import type { Context } from './context.js';
import { type ConfigUpdateOptions, type ConfigValues, configParams, GuestApi } from './guest.js';

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

  /** Throws InvalidArgumentError (backend 'proxmox') for a node or VMID PVE would refuse. */
  constructor(ctx: Context, node: string, vmid: number | string) {
    super(ctx, node, vmid, 'lxc');
  }

  /** Changes config keys. LXC applies them synchronously (PUT): done when this resolves. */
  async updateConfig(values: ConfigValues, opts: ConfigUpdateOptions = {}): Promise<void> {
    await this.ctx.t.put(this.p('/config'), { ...callOptions(opts), params: configParams(values, opts) as never });
    this.invalidate();
  }

  /** The seed's UpdateVMResources: cores, memory and swap (MiB). */
  async setResources(
    resources: { cores?: number; memoryMiB?: number; swapMiB?: number },
    opts: CallOptions = {},
  ): Promise<void> {
    resources = options(resources, 'resources');
    return this.updateConfig(
      {
        cores: optionalInteger(resources.cores, 'cores', 1),
        memory: optionalInteger(resources.memoryMiB, 'memoryMiB', 16),
        swap: optionalInteger(resources.swapMiB, 'swapMiB'),
      },
      callOptions(opts),
    );
  }

  async suspend(opts: CallOptions = {}): Promise<Task> {
    return this.task('POST', '/status/suspend', opts);
  }

  /** Migrates after checking the target; a running container needs `restart`. */
  async migrate(target: string, opts: LxcMigrateOptions = {}): Promise<Task> {
    opts = options(opts);
    const params = {
      target: checkNode(target, 'target'),
      restart: opts.restart,
      timeout: optionalInteger(opts.shutdownTimeout, 'shutdownTimeout'),
      'target-storage': checkStoragePairs(opts.targetStorage),
      bwlimit: optionalInteger(opts.bwlimit, 'bwlimit'),
      online: opts.online,
    };
    const call = callOptions(opts);
    await this.checkMigrationTarget(target, call);
    const pre = await this.migratePrecondition(target, call);
    const refused = pre['not-allowed-nodes']?.[target];
    if (refused) throw this.refusal(target, refused);
    if (pre.running && !opts.restart && !opts.online) {
      throw new InvalidArgumentError({
        message: `CT ${this.vmid} is running: pass restart: true (containers cannot migrate live)`,
        argument: 'restart',
        backend: BACKEND,
      });
    }
    const task = await this.task('POST', '/migrate', call, params);
    this.ctx.invalidateNode(target);
    return task;
  }

  /** PVE's migration preconditions for this container (`GET .../migrate`), optionally for one target. */
  async migratePrecondition(target?: string, opts: CallOptions = {}): Promise<LxcMigratePrecondition> {
    const params = { target: target === undefined ? undefined : checkNode(target, 'target') };
    return this.ctx.t.get<LxcMigratePrecondition>(this.p('/migrate'), { ...callOptions(opts), params });
  }

  /** Converts the container to a template; PVE does this synchronously. */
  async template(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.post(this.p('/template'), callOptions(opts));
    this.invalidate();
  }

  /** The running container's interfaces, as LXC reports them; none when it is not running. */
  async interfaces(opts: CallOptions = {}): Promise<GuestNetworkInterface[]> {
    return (await this.#interfaces(opts)) ?? [];
  }

  // PVE 9 answers null for a container that is not running (older versions a 500, see below).
  #interfaces(opts: CallOptions): Promise<GuestNetworkInterface[] | null> {
    return this.ctx.t.get<GuestNetworkInterface[] | null>(this.p('/interfaces'), callOptions(opts));
  }

  async ip(opts: CallOptions = {}): Promise<string | undefined> {
    return firstNonLoopbackIp(await this.interfaces(opts));
  }

  async termProxy(opts: CallOptions = {}): Promise<TermProxy> {
    return this.ctx.t.post<TermProxy>(this.p('/termproxy'), callOptions(opts));
  }

  /** The interfaces for `details()`: none when PVE says the container is not running (it stopped meanwhile). */
  protected async interfacesIfAvailable(
    _config: GuestConfig,
    opts: CallOptions,
  ): Promise<GuestNetworkInterface[] | undefined> {
    try {
      return (await this.#interfaces(opts)) ?? undefined;
    } catch (error) {
      if (isContainerNotRunning(error)) return undefined;
      throw error;
    }
  }
}

/**
 * Whether PVE answered that the container is not running with a 500 saying exactly that (PVE 8
 * and before; PVE 9 answers null instead).
 */
export function isContainerNotRunning(error: unknown): boolean {
  const message = pveMessageOf(error, 500);
  return message !== undefined && /^CT \d+ (is )?not running$/.test(message);
}
