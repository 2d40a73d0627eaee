import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LxdClient } from '@vmplane/lxd';
import type { StageContext, UndoHandle } from '../../src/engine/stage.js';
import type { InstallPlan, InstallStageName, InstallState, StageOutcome } from '../../src/providers/provider.js';

/** The image scripts/lib.sh imports for the tests. */
export const IMAGE_ALIAS = process.env.VMPLANE_IMAGE_ALIAS ?? 'vmplane-busybox';

/** Every name these tests make starts with `vmpc-<run>-`, so cleanup never touches anything else. */
export const RUN_PREFIX = `vmpc-${randomBytes(3).toString('hex')}-`;

export function uniqueName(label: string): string {
  return `${RUN_PREFIX}${label}-${randomBytes(2).toString('hex')}`.slice(0, 63);
}

export async function connect(): Promise<LxdClient> {
  return LxdClient.connect();
}

import { STAGES } from './stages.js';

export { STAGES };

export interface RecordedUndo {
  kind: string;
  payload: Record<string, unknown>;
  discarded: boolean;
  /** Which stage registered it. */
  stage: string;
}

/** A StageContext of our own: logs and undo registrations are kept for the test to read. */
export class FakeStages {
  readonly logs: string[] = [];
  readonly undos: RecordedUndo[] = [];
  readonly operationId = `op-${randomBytes(4).toString('hex')}`;
  stage = '';
  /** Called inside registerUndo, before it returns (to see what exists when the intent is made). */
  onRegister: ((undo: RecordedUndo) => Promise<void>) | undefined;

  context(signal: AbortSignal = new AbortController().signal): StageContext {
    return {
      operationId: this.operationId,
      signal,
      log: async (message: string) => {
        this.logs.push(message);
      },
      registerUndo: async (kind: string, payload: Record<string, unknown>): Promise<UndoHandle> => {
        const undo: RecordedUndo = { kind, payload: structuredClone(payload), discarded: false, stage: this.stage };
        this.undos.push(undo);
        await this.onRegister?.(undo);
        return {
          discard: async () => {
            undo.discarded = true;
          },
          update: async (next) => {
            undo.payload = structuredClone(next);
          },
        };
      },
    };
  }

  /** Runs the plan's stages in order (all of them, or up to and including `until`). */
  async run(
    plan: InstallPlan,
    state: InstallState,
    opts: { until?: InstallStageName; signal?: AbortSignal } = {},
  ): Promise<Map<InstallStageName, StageOutcome>> {
    const outcomes = new Map<InstallStageName, StageOutcome>();
    for (const name of STAGES) {
      this.stage = name;
      outcomes.set(name, await plan[name](this.context(opts.signal), state));
      if (name === opts.until) break;
    }
    return outcomes;
  }
}

/** Deletes an instance of this run if it exists (stopping it first); never throws. */
export async function removeInstance(lxd: LxdClient, name: string): Promise<void> {
  if (!name.startsWith(RUN_PREFIX)) throw new Error(`refusing to remove ${name}: not made by this run`);
  try {
    await lxd.instances.delete(name, { force: true, timeout: 60_000 });
  } catch (error) {
    if ((error as { status?: number }).status !== 404) console.error(`cleanup of ${name} failed:`, error);
  }
}

/** Deletes every instance of this run, and the log directories LXD 5.0.2 leaves behind them. */
export async function removeRun(lxd: LxdClient): Promise<void> {
  for (const name of await lxd.instances.names()) {
    if (name.startsWith(RUN_PREFIX)) await removeInstance(lxd, name);
  }
  const logs = join(process.env.LXD_DIR ?? '/var/lib/lxd', 'logs');
  let entries: string[] = [];
  try {
    entries = readdirSync(logs);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.startsWith(RUN_PREFIX) || entry.includes(`_${RUN_PREFIX}`)) {
      rmSync(join(logs, entry), { recursive: true, force: true });
    }
  }
}

/** Reads a whole stream of bytes as text. */
export async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
