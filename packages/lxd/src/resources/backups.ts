import type { Readable } from 'node:stream';
import { path } from '@vmplane/common';
import { checkBackupName, checkInstanceName, namesFromUrls } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { InstanceBackup, InstanceBackupsPost } from '../types/api.js';
import { type LxdCallOptions, Resource } from './base.js';

export class InstanceBackups extends Resource {
  private base(name: string, backup?: string): string {
    const p = path`/1.0/instances/${checkInstanceName(name)}/backups`;
    return backup === undefined ? p : p + path`/${checkBackupName(backup)}`;
  }

  async names(name: string, opts: LxdCallOptions = {}): Promise<string[]> {
    return namesFromUrls(await this.call<string[]>('GET', this.base(name), opts, {}), 'raw');
  }

  async list(name: string, opts: LxdCallOptions = {}): Promise<InstanceBackup[]> {
    return this.call('GET', this.base(name), opts, { query: { recursion: 1 } });
  }

  async get(name: string, backup: string, opts: LxdCallOptions = {}): Promise<InstanceBackup> {
    return this.read<InstanceBackup>(this.base(name, backup), opts, {});
  }

  /** Makes a backup and waits for it. */
  async create(name: string, req: InstanceBackupsPost & { name: string }, opts: LxdCallOptions = {}): Promise<void> {
    checkBackupName(req?.name);
    await this.operationDone('POST', this.base(name), opts, { body: req });
  }

  async createOperation(
    name: string,
    req: InstanceBackupsPost & { name: string },
    opts: LxdCallOptions = {},
  ): Promise<LxdOperation> {
    checkBackupName(req?.name);
    return this.operation('POST', this.base(name), opts, { body: req });
  }

  async rename(name: string, backup: string, newName: string, opts: LxdCallOptions = {}): Promise<void> {
    checkBackupName(newName, 'newName');
    await this.operationDone('POST', this.base(name, backup), opts, { body: { name: newName } });
  }

  async delete(name: string, backup: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.operationDone('DELETE', this.base(name, backup), opts, {});
  }

  /**
   * The backup tarball as a stream that owns its connection. The client's default timeout lasts
   * until the answer begins; the caller's `timeout`, if any, covers the whole read.
   */
  async export(name: string, backup: string, opts: LxdCallOptions = {}): Promise<Readable> {
    const res = await this.transport.raw(this.req('GET', `${this.base(name, backup)}/export`, opts, {}));
    return res.stream;
  }
}
