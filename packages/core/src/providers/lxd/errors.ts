import { CoreError } from '../../errors.js';

/**
 * A command the provider ran inside the guest for its own work (useradd, chpasswd) failed. The
 * message names the tool and its exit code, never its input (which may hold a password).
 */
export class GuestCommandError extends CoreError {
  override name = 'GuestCommandError';
  readonly code = 'guest_command_failed';
  readonly status = 502;
  readonly tool: string;
  readonly exitCode: number | undefined;
  constructor(init: { tool: string; exitCode?: number; message: string }) {
    super({ message: init.message });
    this.tool = init.tool;
    this.exitCode = init.exitCode;
  }
}
