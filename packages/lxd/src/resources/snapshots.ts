import { path } from '@vmplane/common';
import { checkInstanceName, checkSnapshotName, namesFromUrls } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { InstanceSnapshot, InstanceSnapshotPut } from '../types/api.js';
import { type LxdCallOptions, Resource, type UpdateOptions } from './base.js';

export interface SnapshotCreate {
  name: string;
  /** Also save the running state (CRIU for containers). */
  stateful?: boolean;
  /** RFC 3339 expiry. */
  expires_at?: string;
}

export class InstanceSnapshots extends Resource {
  private base(name: string, snapshot?: string): string {
    const p = path`/1.0/instances/${checkInstanceName(name)}/snapshots`;
    return snapshot === undefined ? p : p + path`/${checkSnapshotName(snapshot)}`;
  }

  async names(name: string, opts: LxdCallOptions = {}): Promise<string[]> {
    return namesFromUrls(await this.call<string[]>('GET', this.base(name), opts, {}), 'raw');
  }

  async list(name: string, opts: LxdCallOptions = {}): Promise<InstanceSnapshot[]> {
    return this.call('GET', this.base(name), opts, { query: { recursion: 1 } });
  }

  async get(name: string, snapshot: string, opts: LxdCallOptions = {}): Promise<InstanceSnapshot> {
    return this.read<InstanceSnapshot>(this.base(name, snapshot), opts, {});
  }

  /** Takes a snapshot and waits for it. */
  async create(name: string, req: SnapshotCreate, opts: LxdCallOptions = {}): Promise<void> {
    checkSnapshotName(req?.name);
    await this.operationDone('POST', this.base(name), opts, { body: req });
  }

  /** Takes a snapshot, returning the operation unwaited. */
  async createOperation(name: string, req: SnapshotCreate, opts: LxdCallOptions = {}): Promise<LxdOperation> {
    checkSnapshotName(req?.name);
    return this.operation('POST', this.base(name), opts, { body: req });
  }

  async update(name: string, snapshot: string, put: InstanceSnapshotPut, opts: UpdateOptions = {}): Promise<void> {
    await this.operationDone('PUT', this.base(name, snapshot), opts, { body: put, etag: opts?.etag });
  }

  async rename(name: string, snapshot: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkSnapshotName(newName, 'newName');
    await this.operationDone('POST', this.base(name, snapshot), opts, { body: { name: newName } });
  }

  async delete(name: string, snapshot: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.operationDone('DELETE', this.base(name, snapshot), opts, {});
  }

  /** Rolls the instance back to the snapshot (PUT on the instance with `restore`). */
  async restore(name: string, snapshot: string, opts: LxdCallOptions & { stateful?: boolean } = {}): Promise<void> {
    checkSnapshotName(snapshot);
    await this.operationDone('PUT', path`/1.0/instances/${checkInstanceName(name)}`, opts, {
      body: { restore: snapshot, stateful: opts?.stateful === true },
    });
  }
}
