import type { LxdTransport } from '../transport.js';
import type { Project, ProjectPut, ProjectState, ProjectsPost } from '../types/api.js';
import type { LxdCallOptions } from './base.js';
import { Collection } from './collection.js';

export class Projects extends Collection<Project, ProjectsPost & { name: string }, ProjectPut> {
  constructor(transport: LxdTransport) {
    super(transport, '/1.0/projects', 'project', { global: true });
  }

  /** Resource usage against the project's limits (projects themselves are in no project). */
  async state(name: string, opts: LxdCallOptions = {}): Promise<ProjectState> {
    return this.call('GET', `${this.item(name)}/state`, opts, { project: null });
  }
}
