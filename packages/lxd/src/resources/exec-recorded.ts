import { callOptions, type Deadline, noteSent, path, withDeadline } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkInstanceName } from '../names.js';
import type { LxdOperation } from '../operation.js';
import type { Operation } from '../types/api.js';
import { type LxdCallOptions, Resource } from './base.js';
import { type ExecInput, execBody, projectOf } from './exec-options.js';
import { operationFailure } from './exec-session.js';

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * Commands run with LXD recording their output to log files (no websockets), which are read and
 * removed afterwards. LXD cannot signal such a command, so an abort or timeout ends the call
 * while the command runs on; its log files are removed once it ends, also when the abort came
 * while the POST that started it was still on its way.
 */
export class RecordedExec extends Resource {
  async run(name: string, input: ExecInput & LxdCallOptions): Promise<ExecResult> {
    const instance = checkInstanceName(name);
    const project = projectOf(input);
    return withDeadline(callOptions(input), BACKEND, async (d) => {
      const op = await this.post(instance, input, project, d);
      let final: Operation;
      try {
        final = await op.settled({ signal: d.signal });
      } catch (error) {
        this.removeWhenEnded(op, instance, project);
        noteSent(d.reason() ?? error, op.id);
        throw error;
      }
      const call = { ...project, signal: d.signal };
      try {
        // A missing command fails the operation yet still has an exit code (127).
        const exitCode = (final.metadata as { return?: unknown } | null)?.return;
        if (typeof exitCode !== 'number' || exitCode < 0) throw operationFailure(final);
        const [stdout, stderr] = await Promise.all([
          this.readRecorded(final, '1', call),
          this.readRecorded(final, '2', call),
        ]);
        return { exitCode, stdout, stderr };
      } finally {
        await this.removeRecorded(final, instance, project);
      }
    });
  }

  /**
   * Sends the POST under its own deadline (the transport's), not the caller's: an abort that comes
   * while it is on its way would otherwise leave a command whose logs nobody removes. The caller
   * still gets the abort at once; the POST finishes in the background, and the logs go when the
   * command ends.
   */
  private async post(
    instance: string,
    input: ExecInput & LxdCallOptions,
    project: LxdCallOptions,
    d: Deadline,
  ): Promise<LxdOperation> {
    const posting = this.operation(
      'POST',
      path`/1.0/instances/${instance}/exec`,
      // Never shorter than the caller's own deadline, which still applies through the race below.
      { ...project, timeout: Math.max(input.timeout ?? 0, this.transport.defaultTimeout) },
      { body: { ...execBody(input), interactive: false, 'wait-for-websocket': false, 'record-output': true } },
    );
    posting.catch(() => {});
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(d.reason());
      d.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([posting, aborted]);
    } catch (error) {
      if (d.reason()) {
        void posting.then(
          (op) => this.removeWhenEnded(op, instance, project),
          () => {},
        );
        noteSent(d.reason());
      }
      throw error;
    } finally {
      d.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Removes the command's log files once it has ended, whenever that is. */
  private removeWhenEnded(op: LxdOperation, instance: string, project: LxdCallOptions): void {
    void op.settled().then(
      (ended) => this.removeRecorded(ended, instance, project),
      () => this.removeRecorded(op.initial, instance, project),
    );
  }

  private async readRecorded(op: Operation, fd: '1' | '2', opts: LxdCallOptions): Promise<Buffer> {
    const logPath = recordedPaths(op)[fd];
    if (!logPath) return Buffer.alloc(0);
    return (await this.transport.raw(this.req('GET', logPath, opts, {}))).buffer();
  }

  private async removeRecorded(op: Operation, instance: string, opts: LxdCallOptions): Promise<void> {
    let paths: string[] = Object.values(recordedPaths(op));
    if (paths.length === 0) {
      // A command that never started ends without `output` in its metadata, yet LXD made the files.
      const base = path`/1.0/instances/${instance}/logs`;
      paths = ['stdout', 'stderr'].map((fd) => `${base}/exec_${encodeURIComponent(op.id)}.${fd}`);
    }
    await Promise.all(paths.map((p) => this.call('DELETE', p, opts, {}).catch(() => {})));
  }
}

/** The log files LXD recorded a command's output to, as paths under /1.0/instances. */
function recordedPaths(op: Operation): Partial<Record<'1' | '2', string>> {
  const output = (op.metadata as { output?: Record<string, unknown> } | null)?.output ?? {};
  const paths: Partial<Record<'1' | '2', string>> = {};
  for (const fd of ['1', '2'] as const) {
    const p = output[fd];
    // LXD 5.0 may still name them under the older /1.0/containers.
    if (typeof p === 'string') paths[fd] = p.replace(/^\/1\.0\/containers\//, '/1.0/instances/');
  }
  return paths;
}
