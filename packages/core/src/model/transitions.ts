import { InvalidStateError } from '../errors.js';
import type { InstanceState } from './instance.js';

/** What a user can ask of an instance. */
export type InstanceAction =
  | 'start'
  | 'stop'
  | 'shutdown'
  | 'reboot'
  | 'delete'
  | 'standby'
  | 'restore'
  | 'snapshot'
  | 'fork'
  | 'exec'
  | 'update';

/**
 * hypeman's transition table (docs/compat/hypeman.md §4.3): from which states each action may
 * start. Delete is allowed from every state (a broken guest must be removable); exec, cp and stat
 * need Running, not Initializing; fork from Running is hypeman's `from_running` flow.
 */
const ALLOWED: Readonly<Record<InstanceAction, readonly InstanceState[]>> = {
  start: ['Stopped'],
  stop: ['Running', 'Initializing'],
  shutdown: ['Running', 'Initializing'],
  reboot: ['Running'],
  delete: ['Created', 'Initializing', 'Running', 'Paused', 'Shutdown', 'Stopped', 'Standby', 'Unknown'],
  standby: ['Running'],
  restore: ['Standby'],
  snapshot: ['Running', 'Stopped', 'Standby'],
  fork: ['Running', 'Stopped', 'Standby'],
  exec: ['Running'],
  update: ['Created', 'Initializing', 'Running', 'Paused', 'Shutdown', 'Stopped', 'Standby', 'Unknown'],
};

/** The state an action leads to when it succeeds. */
export const RESULT: Readonly<Partial<Record<InstanceAction, InstanceState>>> = {
  start: 'Running',
  stop: 'Stopped',
  shutdown: 'Stopped',
  reboot: 'Running',
  standby: 'Standby',
  restore: 'Running',
};

export function canDo(action: InstanceAction, state: InstanceState): boolean {
  return ALLOWED[action].includes(state);
}

/** hypeman's wording of a refusal, which its CLI shows as it is. */
function refusal(action: InstanceAction, state: InstanceState): string {
  switch (action) {
    case 'start':
      return `invalid state transition: cannot start from state ${state}, must be Stopped`;
    case 'stop':
      return `invalid state transition: cannot stop from state ${state}, must be Running or Initializing`;
    case 'exec':
      return `instance must be running (current state: ${state})`;
    default:
      return `invalid state transition: cannot ${action} from state ${state}`;
  }
}

/** Throws hypeman's 409 `invalid_state` when `state` does not allow `action`. */
export function assertCanDo(action: InstanceAction, state: InstanceState): void {
  if (!canDo(action, state)) throw new InvalidStateError({ state, action, message: refusal(action, state) });
}
