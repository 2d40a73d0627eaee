import type { Image } from '../types/api.js';
import { type ListOptions, listQuery, Resource } from './base.js';

/** Images: upload, export, aliases, copies from other servers. (Being filled in.) */
export class Images extends Resource {
  list(opts: ListOptions = {}): Promise<Image[]> {
    return this.call('GET', '/1.0/images', { ...opts, query: listQuery(opts, 1) });
  }
}
