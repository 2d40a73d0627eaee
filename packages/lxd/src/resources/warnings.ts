import { path } from '@vmplane/common';
import type { Warning, WarningPut } from '../types/api.js';
import { type ListOptions, type LxdCallOptions, listParts, Resource } from './base.js';

export class Warnings extends Resource {
  async list(opts: ListOptions = {}): Promise<Warning[]> {
    return this.call('GET', '/1.0/warnings', opts, listParts(opts, 1));
  }
  async get(uuid: string, opts: LxdCallOptions = {}): Promise<Warning> {
    return this.call('GET', path`/1.0/warnings/${uuid}`, opts, {});
  }
  async update(uuid: string, put: WarningPut, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('PUT', path`/1.0/warnings/${uuid}`, opts, { body: put });
  }
  async delete(uuid: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/warnings/${uuid}`, opts, {});
  }
}
