import { path } from '@vmplane/common';
import { checkInstanceName, checkLogFileName, listEncodingOf, namesFromUrls } from '../names.js';
import { type LxdCallOptions, Resource } from './base.js';

/** An instance's log files (lxc.log, console.log, exec records). */
export class InstanceLogs extends Resource {
  async list(name: string, opts: LxdCallOptions = {}): Promise<string[]> {
    return namesFromUrls(
      await this.call<string[]>('GET', path`/1.0/instances/${checkInstanceName(name)}/logs`, opts, {}),
      listEncodingOf('log file'),
    );
  }

  async get(name: string, file: string, opts: LxdCallOptions = {}): Promise<string> {
    const res = await this.transport.raw(
      this.req('GET', path`/1.0/instances/${checkInstanceName(name)}/logs/${checkLogFileName(file)}`, opts, {}),
    );
    return res.text();
  }

  async delete(name: string, file: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/instances/${checkInstanceName(name)}/logs/${checkLogFileName(file)}`, opts, {});
  }
}
