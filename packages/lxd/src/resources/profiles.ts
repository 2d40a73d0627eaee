import type { LxdTransport } from '../transport.js';
import type { Profile, ProfilePut, ProfilesPost } from '../types/api.js';
import { Collection } from './collection.js';

export class Profiles extends Collection<Profile, ProfilesPost & { name: string }, ProfilePut> {
  constructor(transport: LxdTransport) {
    super(transport, '/1.0/profiles', 'profile');
  }
}
