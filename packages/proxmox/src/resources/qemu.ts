import { type CallOptions, InvalidArgumentError, path } from '@vmplane/common';
import { type CloudInitOptions, cloudInitParams } from '../cloud-init.js';
import { BACKEND } from '../errors.js';
import type { GuestConfig } from '../guest-config.js';
import { firstNonLoopbackIp } from '../helpers.js';
import type { Task } from '../task.js';
import type { GuestNetworkInterface, QemuMigratePrecondition, QemuStatus, TermProxy } from '../types.js';
import { AgentApi } from './agent.js';
import type { Context } from './context.js';
import { type ConfigUpdateOptions, type ConfigValues, GuestApi } from './guest.js';

export interface QemuMigrateOptions extends CallOptions {
  /** Live migration of a running VM. */
  online?: boolean;
  /** Also move local disks (live storage migration). */
  withLocalDisks?: boolean;
  /** One storage id, or `src:dst,src2:dst2`. */
  targetStorage?: string;
  /** KiB/s. */
  bwlimit?: number;
  force?: boolean;
  migrationType?: 'secure' | 'insecure';
  migrationNetwork?: string;
}

/** One QEMU VM: `/nodes/{node}/qemu/{vmid}`. */
export class QemuApi extends GuestApi<QemuStatus> {
  readonly type = 'qemu' as const;
  readonly agent: AgentApi;

  constructor(ctx: Context, node: string, vmid: number) {
    super(ctx, node, vmid, 'qemu');
    this.agent = new AgentApi(ctx, node, this.vmid);
  }

  /** Changes config keys. QEMU applies them asynchronously (POST), so this returns the Task. */
  updateConfig(values: ConfigValues, opts: ConfigUpdateOptions = {}): Promise<Task> {
    return this.task('POST', '/config', opts, {
      ...values,
      delete: opts.delete?.length ? opts.delete.join(',') : undefined,
      digest: opts.digest,
    });
  }

  /** The seed's UpdateVMResources: cores and memory (MiB). */
  setResources(
    resources: { cores?: number; sockets?: number; memoryMiB?: number },
    opts: CallOptions = {},
  ): Promise<Task> {
    return this.updateConfig(
      {
        cores: resources.cores,
        sockets: resources.sockets,
        // `memory` is a property string in PVE 8+ (`current=...`); a bare number is its default key.
        memory: resources.memoryMiB === undefined ? undefined : String(resources.memoryMiB),
      },
      opts,
    );
  }

  /** Sets cloud-init options (ciuser, cipassword, sshkeys, ipconfig[n], nameserver, ...). */
  setCloudInit(options: CloudInitOptions, opts: CallOptions = {}): Promise<Task> {
    return this.updateConfig(cloudInitParams(options), opts);
  }

  /** Regenerates the cloud-init drive after config changes. */
  async regenerateCloudInit(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.put(this.p('/cloudinit'), opts);
  }

  reset(opts: CallOptions & { skiplock?: boolean } = {}): Promise<Task> {
    return this.task('POST', '/status/reset', opts, { skiplock: opts.skiplock });
  }

  /** Pauses the VM, or with `toDisk` hibernates it (resumed by the next start). */
  suspend(opts: CallOptions & { toDisk?: boolean; stateStorage?: string; skiplock?: boolean } = {}): Promise<Task> {
    return this.task('POST', '/status/suspend', opts, {
      todisk: opts.toDisk,
      statestorage: opts.stateStorage,
      skiplock: opts.skiplock,
    });
  }

  /** Migrates to another node after checking that it exists, is online and differs from this one. */
  async migrate(target: string, opts: QemuMigrateOptions = {}): Promise<Task> {
    await this.checkMigrationTarget(target, opts);
    const pre = await this.migratePrecondition(target, opts);
    const refused = pre.not_allowed_nodes?.[target];
    if (refused) throw this.refusal(target, refused);
    if (pre.running) {
      const fail = (message: string) => new InvalidArgumentError({ message, argument: 'online', backend: BACKEND });
      if (!opts.online) throw fail(`VM ${this.vmid} is running: pass online: true for a live migration`);
      if (pre.local_resources.length > 0)
        throw fail(`VM ${this.vmid} uses local resources (${pre.local_resources.join(', ')}): it cannot move live`);
      const local = pre.local_disks.filter((d) => !d.cdrom && !d.is_unused);
      if (local.length > 0 && !opts.withLocalDisks)
        throw fail(
          `VM ${this.vmid} has local disks (${local.map((d) => d.volid).join(', ')}): pass withLocalDisks: true`,
        );
    }
    const task = await this.task('POST', '/migrate', opts, {
      target,
      online: opts.online,
      'with-local-disks': opts.withLocalDisks,
      targetstorage: opts.targetStorage,
      bwlimit: opts.bwlimit,
      force: opts.force,
      migration_type: opts.migrationType,
      migration_network: opts.migrationNetwork,
    });
    this.ctx.invalidateNode(target);
    return task;
  }

  /** PVE's migration preconditions for this VM (`GET .../migrate`), optionally for one target. */
  migratePrecondition(target?: string, opts: CallOptions = {}): Promise<QemuMigratePrecondition> {
    return this.ctx.t.get<QemuMigratePrecondition>(this.p('/migrate'), { ...opts, params: { target } });
  }

  /** Converts the VM to a template (optionally only one disk). */
  template(opts: CallOptions & { disk?: string } = {}): Promise<Task> {
    return this.task('POST', '/template', opts, { disk: opts.disk });
  }

  termProxy(opts: CallOptions & { serial?: 'serial0' | 'serial1' | 'serial2' | 'serial3' } = {}): Promise<TermProxy> {
    return this.ctx.t.post<TermProxy>(this.p('/termproxy'), { ...opts, params: { serial: opts.serial } });
  }

  /** The guest's first address that is neither loopback nor link-local, from the agent. */
  async ip(opts: CallOptions = {}): Promise<string | undefined> {
    return firstNonLoopbackIp(await this.agent.networkInterfaces(opts));
  }

  protected async interfacesIfAvailable(
    config: GuestConfig,
    opts: CallOptions,
  ): Promise<GuestNetworkInterface[] | undefined> {
    if (!config.agentEnabled) return undefined;
    try {
      return await this.agent.networkInterfaces(opts);
    } catch (error) {
      // An agent that is configured but not (yet) running is normal: report no interfaces.
      if (error instanceof Error && 'status' in error) return undefined;
      throw error;
    }
  }
}

/** A disk for `createVm`: `import-from` copies an image (a cloud image) into a new volume. */
export interface QemuCreateOptions extends CallOptions {
  vmid: number;
  name?: string;
  memoryMiB?: number;
  cores?: number;
  sockets?: number;
  /** Any further config keys, sent as they are (net0, scsihw, ostype, agent, serial0, vga, ...). */
  config?: ConfigValues;
  cloudInit?: CloudInitOptions;
  start?: boolean;
  pool?: string;
}

export interface CloudImageVmOptions extends Omit<QemuCreateOptions, 'config'> {
  /** Volume of the cloud image, e.g. `local:import/debian-12-genericcloud-amd64.qcow2`. */
  image: string;
  /** Where the imported disk and the cloud-init drive go, e.g. `local-lvm`. */
  storage: string;
  /** Grow the imported disk to this size (e.g. `20G`) after import. */
  diskSize?: string;
  /** Bridge of net0 (default vmbr0). */
  bridge?: string;
  config?: ConfigValues;
}

export function qemuCreateParams(opts: QemuCreateOptions): Record<string, unknown> {
  return {
    vmid: opts.vmid,
    name: opts.name,
    memory: opts.memoryMiB === undefined ? undefined : String(opts.memoryMiB),
    cores: opts.cores,
    sockets: opts.sockets,
    pool: opts.pool,
    start: opts.start,
    ...(opts.cloudInit ? cloudInitParams(opts.cloudInit) : {}),
    ...opts.config,
  };
}

/**
 * The config of a VM booting a cloud image: the image imported as scsi0 (`import-from`), a
 * cloud-init drive, a serial console, and the guest agent on.
 */
export function cloudImageVmParams(opts: CloudImageVmOptions): Record<string, unknown> {
  if (!/^[A-Za-z][\w.-]*:.+/.test(opts.image) && !opts.image.startsWith('/')) {
    throw new InvalidArgumentError({
      message: 'image must be a volume id like local:import/image.qcow2',
      argument: 'image',
      backend: BACKEND,
    });
  }
  const disk = `${opts.storage}:0,import-from=${opts.image}`;
  return qemuCreateParams({
    ...opts,
    config: {
      scsihw: 'virtio-scsi-single',
      scsi0: disk,
      ide2: `${opts.storage}:cloudinit`,
      boot: 'order=scsi0',
      serial0: 'socket',
      vga: 'serial0',
      agent: '1',
      net0: `virtio,bridge=${opts.bridge ?? 'vmbr0'}`,
      ...opts.config,
    },
  });
}

export function qemuPath(node: string, vmid: number): string {
  return path`/nodes/${node}/qemu/${vmid}`;
}
