import { AbortError, type CallOptions } from '@vmplane/common';
import type { StageContext, UndoHandle } from '../../engine/stage.js';
import type { CatalogueImage } from '../../images/catalogue.js';
import type { ChecksumEntry } from '../../images/checksums.js';
import type { DownloadResult } from './downloads.js';
import type { ProxmoxGuests } from './guests.js';
import { UNDO } from './undo.js';
import { runTask } from './util.js';

/**
 * The download stage: the image onto the node's image storage through PVE's own `download-url`
 * (content `import`, PVE checks the checksum and fails the task on a mismatch), once per file
 * however many installs want it at the same time (see downloads.ts).
 *
 * How an install decides whether the file is its to remove on undo: only the install whose call
 * started the download registers `proxmox.delete-volume` (before the POST, so a crash leaves the
 * intent), and that undo deletes the file only when no other install of this process uses it
 * then. An install that found the file on the storage, or waited for another's download, never
 * deletes it.
 */

export interface ImageDownload extends DownloadResult {
  key: string;
  joined: boolean;
  /** Drops this install's use of the file when the install is undone before its VM imported it. */
  releaseUndo: UndoHandle;
}

export async function downloadImage(
  g: ProxmoxGuests,
  ctx: StageContext,
  what: { node: string; image: CatalogueImage; checksum: ChecksumEntry },
): Promise<ImageDownload> {
  const { node, image, checksum } = what;
  const storageId = g.o.imageStorage;
  const volid = `${storageId}:import/${image.storageFile}`;
  const key = `${g.pve.transport.apiUrl}|${node}|${storageId}|${image.storageFile}`;
  const storage = g.pve.node(node).storage(storageId);
  g.o.downloads.use(key, ctx.operationId);
  const releaseUndo = await ctx.registerUndo(UNDO.releaseImage, { key, operationId: ctx.operationId });

  const fetch = async (): Promise<DownloadResult> => {
    const present = await storage.content({ content: 'import', signal: ctx.signal, timeout: 30_000 });
    if (present.some((c) => c.volid === volid)) {
      await ctx.log(`${volid} is on the storage already`);
      return { volid, downloaded: false };
    }
    const payload = { node, storage: storageId, volid, key, operationId: ctx.operationId };
    const undo = await ctx.registerUndo(UNDO.deleteVolume, payload);
    await ctx.log(`PVE downloads ${image.url} to ${volid} (${checksum.algorithm} checked by PVE)`);
    // The shared download must not end because the install that started it was cancelled: the
    // task's own deadline bounds it, and each install bounds only its own wait (below).
    const shared: CallOptions = { timeout: g.o.downloadTimeoutMs };
    await runTask(
      shared,
      async (o) => {
        const task = await storage.downloadUrl(image.url, {
          ...o,
          signal: ctx.signal,
          content: 'import',
          filename: image.storageFile,
          checksum: checksum.hex,
          checksumAlgorithm: checksum.algorithm,
        });
        await undo.update({ ...payload, upid: task.upid });
        return task;
      },
      (l) => ctx.log(l),
    );
    return { volid, downloaded: true };
  };

  // Each waiter gives up on its own signal; the download goes on for the others.
  const wait = (flight: Promise<DownloadResult>) =>
    new Promise<DownloadResult>((resolve, reject) => {
      if (ctx.signal.aborted) {
        reject(ctx.signal.reason ?? new AbortError({ message: 'cancelled' }));
        return;
      }
      const onAbort = () => reject(ctx.signal.reason ?? new AbortError({ message: 'cancelled' }));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      flight.then(resolve, reject).finally(() => ctx.signal.removeEventListener('abort', onAbort));
    });

  if (g.o.downloads.inFlight(key)) await ctx.log(`another install is downloading ${volid}: waiting for it`);
  const r = await g.o.downloads.ensure(key, fetch, wait);
  return { ...r, key, releaseUndo };
}
