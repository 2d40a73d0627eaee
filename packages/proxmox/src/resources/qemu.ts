import { type CallOptions, InvalidArgumentError, path } from '@vmplane/common';
import { type CloudInitOptions, cloudInitParams } from '../cloud-init.js';
import { BACKEND } from '../errors.js';
import type { GuestConfig } from '../guest-config.js';
import { firstNonLoopbackIp } from '../helpers.js';
import {
  checkBridge,
  checkCidr,
  checkDisk,
  checkNode,
  checkStorage,
  checkStoragePairs,
  checkVmid,
  checkVolumeId,
  optionalEnum,
  optionalInteger,
  optionalPool,
  optionalStorage,
} from '../ids.js';
import { callOptions, options } from '../options.js';
import type { Task } from '../task.js';
import type { GuestNetworkInterface, QemuMigratePrecondition, QemuStatus, TermProxy } from '../types.js';
import { AgentApi, isAgentUnavailable } from './agent.js';
import type { Context } from './context.js';
import { type ConfigUpdateOptions, type ConfigValues, configParams, configValues, GuestApi } from './guest.js';

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

  /** Throws InvalidArgumentError (backend 'proxmox') for a node or VMID PVE would refuse. */
  constructor(ctx: Context, node: string, vmid: number | string) {
    super(ctx, node, vmid, 'qemu');
    this.agent = new AgentApi(ctx, this.node, this.vmid);
  }

  /** Changes config keys. QEMU applies them asynchronously (POST), so this returns the Task. */
  async updateConfig(values: ConfigValues, opts: ConfigUpdateOptions = {}): Promise<Task> {
    return this.task('POST', '/config', opts, configParams(values, opts));
  }

  /** The seed's UpdateVMResources: cores and memory (MiB). */
  async setResources(
    resources: { cores?: number; sockets?: number; memoryMiB?: number },
    opts: CallOptions = {},
  ): Promise<Task> {
    resources = options(resources, 'resources');
    const memory = optionalInteger(resources.memoryMiB, 'memoryMiB', 16);
    return this.updateConfig(
      {
        cores: optionalInteger(resources.cores, 'cores', 1),
        sockets: optionalInteger(resources.sockets, 'sockets', 1),
        // `memory` is a property string in PVE 8+ (`current=...`); a bare number is its default key.
        memory: memory === undefined ? undefined : String(memory),
      },
      callOptions(opts),
    );
  }

  /** Sets cloud-init options (ciuser, cipassword, sshkeys, ipconfig[n], nameserver, ...). */
  async setCloudInit(cloudInit: CloudInitOptions, opts: CallOptions = {}): Promise<Task> {
    return this.updateConfig(cloudInitParams(options(cloudInit, 'cloudInit')), callOptions(opts));
  }

  /** Regenerates the cloud-init drive after config changes. */
  async regenerateCloudInit(opts: CallOptions = {}): Promise<void> {
    await this.ctx.t.put(this.p('/cloudinit'), callOptions(opts));
  }

  async reset(opts: CallOptions & { skiplock?: boolean } = {}): Promise<Task> {
    opts = options(opts);
    return this.task('POST', '/status/reset', opts, { skiplock: opts.skiplock });
  }

  /** Pauses the VM, or with `toDisk` hibernates it (resumed by the next start). */
  async suspend(
    opts: CallOptions & { toDisk?: boolean; stateStorage?: string; skiplock?: boolean } = {},
  ): Promise<Task> {
    opts = options(opts);
    return this.task('POST', '/status/suspend', opts, {
      todisk: opts.toDisk,
      statestorage: optionalStorage(opts.stateStorage, 'stateStorage'),
      skiplock: opts.skiplock,
    });
  }

  /** Migrates to another node after checking that it exists, is online and differs from this one. */
  async migrate(target: string, opts: QemuMigrateOptions = {}): Promise<Task> {
    opts = options(opts);
    const params = {
      target: checkNode(target, 'target'),
      online: opts.online,
      'with-local-disks': opts.withLocalDisks,
      targetstorage: checkStoragePairs(opts.targetStorage),
      bwlimit: optionalInteger(opts.bwlimit, 'bwlimit'),
      force: opts.force,
      migration_type: optionalEnum(opts.migrationType, ['secure', 'insecure'], 'migrationType'),
      migration_network: opts.migrationNetwork === undefined ? undefined : checkCidr(opts.migrationNetwork),
    };
    const call = callOptions(opts);
    await this.checkMigrationTarget(target, call);
    const pre = await this.migratePrecondition(target, call);
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
    const task = await this.task('POST', '/migrate', call, params);
    this.ctx.invalidateNode(target);
    return task;
  }

  /** PVE's migration preconditions for this VM (`GET .../migrate`), optionally for one target. */
  async migratePrecondition(target?: string, opts: CallOptions = {}): Promise<QemuMigratePrecondition> {
    const params = { target: target === undefined ? undefined : checkNode(target, 'target') };
    return this.ctx.t.get<QemuMigratePrecondition>(this.p('/migrate'), { ...callOptions(opts), params });
  }

  /** Converts the VM to a template (optionally only one disk). */
  async template(opts: CallOptions & { disk?: string } = {}): Promise<Task> {
    opts = options(opts);
    const disk = opts.disk === undefined ? undefined : checkDisk(opts.disk, 'qemu');
    return this.task('POST', '/template', opts, { disk });
  }

  async termProxy(
    opts: CallOptions & { serial?: 'serial0' | 'serial1' | 'serial2' | 'serial3' } = {},
  ): Promise<TermProxy> {
    opts = options(opts);
    const serial = optionalEnum(opts.serial, ['serial0', 'serial1', 'serial2', 'serial3'], 'serial');
    return this.ctx.t.post<TermProxy>(this.p('/termproxy'), { ...callOptions(opts), params: { serial } });
  }

  /** The guest's first address that is neither loopback nor link-local, from the agent. */
  async ip(opts: CallOptions = {}): Promise<string | undefined> {
    return firstNonLoopbackIp(await this.agent.networkInterfaces(callOptions(opts)));
  }

  /**
   * The agent's interfaces for `details()`: none when PVE says the agent is not configured or not
   * running (or the VM stopped meanwhile). Any other failure (401, 403, a 500 of another kind, a
   * lost connection) is the caller's to see.
   */
  protected async interfacesIfAvailable(
    config: GuestConfig,
    opts: CallOptions,
  ): Promise<GuestNetworkInterface[] | undefined> {
    if (!config.agentEnabled) return undefined;
    try {
      return await this.agent.networkInterfaces(opts);
    } catch (error) {
      if (isAgentUnavailable(error, this.vmid)) return undefined;
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
    vmid: checkVmid(opts.vmid),
    name: opts.name,
    memory: opts.memoryMiB === undefined ? undefined : String(optionalInteger(opts.memoryMiB, 'memoryMiB', 16)),
    cores: optionalInteger(opts.cores, 'cores', 1),
    sockets: optionalInteger(opts.sockets, 'sockets', 1),
    pool: optionalPool(opts.pool),
    start: opts.start,
    ...(opts.cloudInit ? cloudInitParams(opts.cloudInit) : {}),
    ...(opts.config === undefined ? {} : configValues(opts.config, 'config')),
  };
}

/**
 * The config of a VM booting a cloud image: the image imported as scsi0 (`import-from`), a
 * cloud-init drive, a serial console, and the guest agent on.
 */
export function cloudImageVmParams(opts: CloudImageVmOptions): Record<string, unknown> {
  // Both go into property strings: a comma would add keys of its own.
  const image = checkVolumeId(opts.image, 'image', true);
  if (/[,=]/.test(image)) {
    throw new InvalidArgumentError({
      message: 'image must be a volume id like local:import/image.qcow2, without , or =',
      argument: 'image',
      backend: BACKEND,
    });
  }
  const storage = checkStorage(opts.storage);
  const bridge = opts.bridge === undefined ? 'vmbr0' : checkBridge(opts.bridge);
  return qemuCreateParams({
    ...opts,
    config: {
      scsihw: 'virtio-scsi-single',
      scsi0: `${storage}:0,import-from=${image}`,
      ide2: `${storage}:cloudinit`,
      boot: 'order=scsi0',
      serial0: 'socket',
      vga: 'serial0',
      agent: '1',
      net0: `virtio,bridge=${bridge}`,
      ...opts.config,
    },
  });
}

export function qemuPath(node: string, vmid: number): string {
  return path`/nodes/${node}/qemu/${vmid}`;
}
