import { path } from '@vmplane/common';
import {
  checkStoragePoolName,
  checkVolumeName,
  checkVolumeSnapshotName,
  listEncodingOf,
  namesFromUrls,
} from '../names.js';
import type { LxdTransport } from '../transport.js';
import type {
  ResourcesStoragePool,
  StoragePool,
  StoragePoolPut,
  StoragePoolsPost,
  StorageVolume,
  StorageVolumePut,
  StorageVolumeSnapshot,
  StorageVolumeState,
  StorageVolumesPost,
} from '../types/api.js';
import { type ListOptions, type LxdCallOptions, listParts, Resource, type UpdateOptions } from './base.js';
import { Collection } from './collection.js';

/** Volume types LXD knows; custom volumes are the ones users create. */
export type StorageVolumeType = 'custom' | 'container' | 'virtual-machine' | 'image';

export class StoragePools extends Collection<
  StoragePool,
  StoragePoolsPost & { name: string; driver: string },
  StoragePoolPut
> {
  readonly volumes: StorageVolumes;

  constructor(transport: LxdTransport) {
    super(transport, '/1.0/storage-pools', 'storage pool');
    this.volumes = new StorageVolumes(transport);
  }

  /** Space and inode usage of a pool. */
  async resources(name: string, opts: LxdCallOptions = {}): Promise<ResourcesStoragePool> {
    return this.call('GET', `${this.item(name)}/resources`, opts, {});
  }
}

export interface VolumeCopyOptions extends LxdCallOptions {
  /** Pool of the source volume, when it differs from the target pool. */
  sourcePool?: string;
  /** Copy only the volume, not its snapshots. */
  volumeOnly?: boolean;
}

/** Storage volumes of a pool: custom volumes are created, renamed, copied and deleted here. */
export class StorageVolumes extends Resource {
  private base(pool: string, type?: StorageVolumeType, name?: string): string {
    let p = path`/1.0/storage-pools/${checkStoragePoolName(pool)}/volumes`;
    if (type) p += path`/${type}`;
    if (name !== undefined) p += path`/${checkVolumeName(name, 'name')}`;
    return p;
  }

  /** Names of the pool's volumes, of one type with `type` (volumes of two types may share a name). */
  async names(pool: string, opts: ListOptions & { type?: StorageVolumeType } = {}): Promise<string[]> {
    const urls = await this.call<string[]>('GET', this.base(pool, opts?.type), opts, listParts(opts, 0));
    return namesFromUrls(urls, listEncodingOf('storage volume'));
  }

  async list(pool: string, opts: ListOptions & { type?: StorageVolumeType } = {}): Promise<StorageVolume[]> {
    return this.call('GET', this.base(pool, opts?.type), opts, listParts(opts, 1));
  }

  async get(pool: string, type: StorageVolumeType, name: string, opts: LxdCallOptions = {}): Promise<StorageVolume> {
    return this.read<StorageVolume>(this.base(pool, type, name), opts, {});
  }

  /** Creates a custom volume (filesystem by default). */
  async create(pool: string, volume: StorageVolumesPost & { name: string }, opts: LxdCallOptions = {}): Promise<void> {
    checkVolumeName(volume?.name, 'name');
    await this.call('POST', this.base(pool, 'custom'), opts, {
      body: { type: 'custom', content_type: 'filesystem', ...volume },
    });
  }

  /** Copies a custom volume, within a pool or across pools. */
  async copy(pool: string, source: string, target: string, opts: VolumeCopyOptions = {}): Promise<void> {
    checkVolumeName(source, 'source');
    checkVolumeName(target, 'target');
    const sourcePool = opts?.sourcePool === undefined ? pool : checkStoragePoolName(opts.sourcePool, 'sourcePool');
    await this.maybeOperationDone('POST', this.base(pool, 'custom'), opts, {
      body: {
        name: target,
        type: 'custom',
        source: { type: 'copy', name: source, pool: sourcePool, volume_only: opts?.volumeOnly === true },
      },
    });
  }

  async update(
    pool: string,
    type: StorageVolumeType,
    name: string,
    put: StorageVolumePut,
    opts: UpdateOptions = {},
  ): Promise<void> {
    await this.call('PUT', this.base(pool, type, name), opts, { body: put, etag: opts?.etag });
  }

  async patch(
    pool: string,
    type: StorageVolumeType,
    name: string,
    put: Partial<StorageVolumePut>,
    opts: UpdateOptions = {},
  ): Promise<void> {
    await this.call('PATCH', this.base(pool, type, name), opts, { body: put, etag: opts?.etag });
  }

  async rename(pool: string, name: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkVolumeName(newName, 'newName');
    await this.maybeOperationDone('POST', this.base(pool, 'custom', name), opts, { body: { name: newName } });
  }

  async delete(pool: string, type: StorageVolumeType, name: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.maybeOperationDone('DELETE', this.base(pool, type, name), opts, {});
  }

  async state(
    pool: string,
    type: StorageVolumeType,
    name: string,
    opts: LxdCallOptions = {},
  ): Promise<StorageVolumeState> {
    return this.call('GET', `${this.base(pool, type, name)}/state`, opts, {});
  }

  /** Snapshots of a volume. */
  async snapshotNames(pool: string, name: string, opts: LxdCallOptions = {}): Promise<string[]> {
    const urls = await this.call<string[]>('GET', `${this.base(pool, 'custom', name)}/snapshots`, opts, {});
    return namesFromUrls(urls, listEncodingOf('volume snapshot'));
  }

  async createSnapshot(pool: string, name: string, snapshot: string, opts: LxdCallOptions = {}): Promise<void> {
    checkVolumeSnapshotName(snapshot);
    await this.operationDone('POST', `${this.base(pool, 'custom', name)}/snapshots`, opts, {
      body: { name: snapshot },
    });
  }

  async getSnapshot(
    pool: string,
    name: string,
    snapshot: string,
    opts: LxdCallOptions = {},
  ): Promise<StorageVolumeSnapshot> {
    return this.read<StorageVolumeSnapshot>(this.snapshot(pool, name, snapshot), opts, {});
  }

  async deleteSnapshot(pool: string, name: string, snapshot: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.operationDone('DELETE', this.snapshot(pool, name, snapshot), opts, {});
  }

  private snapshot(pool: string, name: string, snapshot: string): string {
    return `${this.base(pool, 'custom', name)}/snapshots${path`/${checkVolumeSnapshotName(snapshot)}`}`;
  }
}
