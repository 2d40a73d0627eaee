import { path } from '@vmplane/common';
import { checkClusterMemberName, listEncodingOf, namesFromUrls } from '../names.js';
import type { Cluster as ClusterInfo, ClusterMember, ClusterMemberPut, ClusterPut } from '../types/api.js';
import { type LxdCallOptions, Resource, type UpdateOptions } from './base.js';

/** Clustering. A standalone server answers `enabled: false` and an empty member list. */
export class ClusterResource extends Resource {
  async get(opts: LxdCallOptions = {}): Promise<ClusterInfo> {
    return this.read<ClusterInfo>('/1.0/cluster', opts, {});
  }

  async update(put: ClusterPut, opts: UpdateOptions = {}): Promise<void> {
    await this.operationDone('PUT', '/1.0/cluster', opts, { body: put, etag: opts?.etag });
  }

  async memberNames(opts: LxdCallOptions = {}): Promise<string[]> {
    return namesFromUrls(
      await this.call<string[]>('GET', '/1.0/cluster/members', opts, {}),
      listEncodingOf('cluster member'),
    );
  }

  async members(opts: LxdCallOptions = {}): Promise<ClusterMember[]> {
    return this.call('GET', '/1.0/cluster/members', opts, { query: { recursion: 1 } });
  }

  async member(name: string, opts: LxdCallOptions = {}): Promise<ClusterMember> {
    return this.read<ClusterMember>(path`/1.0/cluster/members/${checkClusterMemberName(name)}`, opts, {});
  }

  async updateMember(name: string, put: ClusterMemberPut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PUT', path`/1.0/cluster/members/${checkClusterMemberName(name)}`, opts, {
      body: put,
      etag: opts?.etag,
    });
  }

  /** Whether this server is part of a cluster. */
  async isClustered(opts: LxdCallOptions = {}): Promise<boolean> {
    return (await this.get(opts)).enabled;
  }
}
