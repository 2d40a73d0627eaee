/** LXD's status codes for operations and instances (shared/api/status_code.go). */
export enum StatusCode {
  OperationCreated = 100,
  Started = 101,
  Stopped = 102,
  Running = 103,
  Cancelling = 104,
  Pending = 105,
  Starting = 106,
  Stopping = 107,
  Aborting = 108,
  Freezing = 109,
  Frozen = 110,
  Thawed = 111,
  Error = 112,
  Ready = 113,
  Success = 200,
  Failure = 400,
  Cancelled = 401,
}

const names: Record<number, string> = {
  100: 'Operation created',
  101: 'Started',
  102: 'Stopped',
  103: 'Running',
  104: 'Cancelling',
  105: 'Pending',
  106: 'Starting',
  107: 'Stopping',
  108: 'Aborting',
  109: 'Freezing',
  110: 'Frozen',
  111: 'Thawed',
  112: 'Error',
  113: 'Ready',
  200: 'Success',
  400: 'Failure',
  401: 'Cancelled',
};

/** The string LXD prints for a status code ("Running", "Operation created", ...). */
export function statusCodeString(code: StatusCode | number): string {
  return names[code] ?? `Unknown status code ${code}`;
}

/** Whether an operation in this state will not change again (Success, Failure, Cancelled). */
export function isFinal(code: StatusCode | number): boolean {
  return code >= 200;
}
