import { type CallOptions, InvalidArgumentError, path, sleep, withDeadline } from '@vmplane/common';
import type { UndoHandler } from '../provider.js';
import type { ProxmoxGuests } from './guests.js';
import { call, isVolumeMissing } from './util.js';

/**
 * The Proxmox provider's undo handlers, by kind. Each is idempotent: what is gone already counts
 * as undone. Payloads are journal-safe (node, VMID, volume ids, operation ids).
 */
export const UNDO = {
  /** `{ node, vmid }`: stop with skiplock, delete with purge and unreferenced disks. */
  destroyVm: 'proxmox.destroy-vm',
  /** `{ node, storage, volid, key, operationId, upid? }`: a downloaded image, if no other install uses it. */
  deleteVolume: 'proxmox.delete-volume',
  /** `{ key, operationId }`: the install no longer uses the shared image (local bookkeeping only). */
  releaseImage: 'proxmox.release-image',
} as const;

function str(payload: Record<string, unknown>, key: string): string {
  const v = payload[key];
  if (typeof v !== 'string' || v === '') throw new TypeError(`undo payload lacks ${key}`);
  return v;
}

export function undoHandlers(g: ProxmoxGuests): Record<string, UndoHandler> {
  return {
    [UNDO.destroyVm]: async (payload, opts: CallOptions) => {
      const vmid = Number(payload.vmid);
      if (!Number.isInteger(vmid)) throw new TypeError('undo payload lacks vmid');
      // The guest may have moved (a migration stage ran) or be half made: destroy() finds it by VMID.
      await g.destroy(
        { type: 'proxmox', node: str(payload, 'node'), vmid, kind: payload.kind === 'lxc' ? 'lxc' : 'qemu' },
        opts,
      );
    },
    [UNDO.deleteVolume]: async (payload, opts: CallOptions) => {
      const key = str(payload, 'key');
      const operation = str(payload, 'operationId');
      // Another install of this process waits for or imports the same file: it is theirs now.
      if (g.o.downloads.othersUsing(key, operation).length > 0) return;
      const node = str(payload, 'node');
      const storage = str(payload, 'storage');
      const volid = str(payload, 'volid');
      const o = call(opts, 5 * 60_000);
      if (typeof payload.upid === 'string') {
        // A download still running would add the file after we deleted it.
        await g.pve.tasks
          .get(payload.upid)
          .stop(o)
          .catch(() => {});
      }
      try {
        // The client has no call for deleting a volume; PVE answers the UPID of an `imgdel` task.
        const upid = await g.pve.transport.delete<string>(path`/nodes/${node}/storage/${storage}/content/${volid}`, o);
        await waitDeleted(g, upid, { node, storage, volid }, o);
      } catch (error) {
        if (!isVolumeMissing(error)) throw error;
      }
    },
    [UNDO.releaseImage]: async (payload) => {
      g.o.downloads.release(str(payload, 'key'), str(payload, 'operationId'));
    },
  };
}

/**
 * Waits for the deletion's task; when its UPID cannot be read (the simulator names the task by the
 * volume id, whose `:` a UPID cannot hold), until the volume is no longer listed.
 */
async function waitDeleted(
  g: ProxmoxGuests,
  upid: string,
  v: { node: string; storage: string; volid: string },
  opts: CallOptions,
): Promise<void> {
  let task: ReturnType<ProxmoxGuests['pve']['tasks']['get']> | undefined;
  try {
    task = g.pve.tasks.get(upid);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
  }
  if (task) {
    await task.wait({ ...opts, interval: 100, maxInterval: 1_000 });
    return;
  }
  await withDeadline(opts, 'proxmox', async (d) => {
    for (;;) {
      const content = await g.pve.node(v.node).storage(v.storage).content({ signal: d.signal });
      if (!content.some((c) => c.volid === v.volid)) return;
      await sleep(200, d.signal);
    }
  });
}
