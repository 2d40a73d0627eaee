import { createHash } from 'node:crypto';
import type { Ctx } from '../context.js';
import { CHECKSUM_ALGORITHMS, fail, parseSize, type Volume } from '../state.js';
import { inspectImage } from '../url-fetch.js';
import { task } from './common.js';
import { label } from './guest-model.js';
import type { Routes } from './router.js';
import { CONTENT_DIRS, contentFileFormat, normalizeContentFilename, type UploadContent } from './storage-files.js';
import { storageStatus } from './summaries.js';

/** Storage: per-node status and content, volume allocation and deletion, upload (download-url is in download.ts). */

function volumeOf(ctx: Ctx) {
  const storage = ctx.str('storage');
  ctx.state.storage(storage);
  let volid = ctx.str('volume');
  if (!volid.includes(':')) volid = `${storage}:${volid}`;
  const v = ctx.state.volumesOf(ctx.str('node'), storage).get(volid);
  if (!v) return fail(`volume '${volid}' does not exist`);
  return v;
}

const digestsOf = (data: Buffer) =>
  Object.fromEntries(CHECKSUM_ALGORITHMS.map((a) => [a, createHash(a).update(data).digest('hex')]));

/** An uploaded image's virtual size when its header is one; the upload itself is not refused. */
function imageHeader(format: string, data: Buffer): { virtualSize: number } | undefined {
  try {
    return inspectImage(format, data.subarray(0, 512), data.length, '');
  } catch {
    return undefined;
  }
}

/** The volume that an upload task adds when it ends, with PVE's task log. */
function uploadTask(ctx: Ctx, content: UploadContent, filename: string, format: string, data: Buffer): string {
  const size = data.length;
  const state = ctx.state;
  const node = ctx.str('node');
  const storage = ctx.str('storage');
  const def = state.storage(storage);
  const volid = `${storage}:${content}/${filename}`;
  const dest = `${def.path}/${CONTENT_DIRS[content]}/${filename}`;
  const tmp = `/var/tmp/pveupload-${createHash('md5').update(`${volid}:${state.now()}`).digest('hex')}`;
  const log = [
    `starting file import from: ${tmp}`,
    `target node: ${node}`,
    `target file: ${dest}`,
    `file size is: ${size}`,
    `command: cp -- ${tmp} ${dest}`,
    'finished file import successfully',
  ];
  // PVE names no worker ID for an upload.
  return task(
    ctx,
    node,
    'imgcopy',
    '',
    () => {
      // PVE overwrites a file of the same name.
      const volume: Volume = { volid, content, format, size, ctime: state.nowS(), digests: digestsOf(data) };
      const image = content === 'import' ? imageHeader(format, data) : undefined;
      if (image) volume.virtualSize = image.virtualSize;
      state.volumesOf(node, storage).set(volid, volume);
    },
    log,
  );
}

export function register(r: Routes): void {
  r.on('GET', '/nodes/{node}/storage', (ctx) => {
    const node = ctx.str('node');
    const content = ctx.optStr('content')?.split(/[,;\s]+/);
    const only = ctx.optStr('storage');
    return [...ctx.state.storages.values()]
      .filter((d) => only === undefined || d.storage === only)
      .filter((d) => !content || content.some((c) => d.content.includes(c)))
      .map((d) => storageStatus(ctx.state, node, d.storage));
  });
  r.on('GET', '/nodes/{node}/storage/{storage}/status', (ctx) => {
    const s = storageStatus(ctx.state, ctx.str('node'), ctx.str('storage'));
    delete s.storage;
    return s;
  });

  r.on('GET', '/nodes/{node}/storage/{storage}/content', (ctx) => {
    const state = ctx.state;
    const storage = ctx.str('storage');
    state.storage(storage);
    const content = ctx.optStr('content');
    const vmid = ctx.optInt('vmid');
    return [...state.volumesOf(ctx.str('node'), storage).values()]
      .filter((v) => content === undefined || v.content === content)
      .filter((v) => vmid === undefined || v.vmid === vmid)
      .map((v) => ({
        volid: v.volid,
        content: v.content,
        format: v.format,
        size: v.size,
        ctime: v.ctime,
        ...(v.vmid !== undefined ? { vmid: v.vmid, used: 0 } : {}),
        ...(v.notes !== undefined ? { notes: v.notes } : {}),
      }));
  });

  r.on('POST', '/nodes/{node}/storage/{storage}/content', (ctx) => {
    const state = ctx.state;
    const storage = ctx.str('storage');
    const def = state.storage(storage);
    const vmid = ctx.int('vmid');
    const filename = ctx.str('filename');
    const size = parseSize(ctx.str('size').replace(/^(\d+)$/, '$1K'));
    const format = ctx.optStr('format') ?? (filename.split('.').pop() === 'qcow2' ? 'qcow2' : 'raw');
    const volid = def.type === 'lvmthin' ? `${storage}:${filename}` : `${storage}:${vmid}/${filename}`;
    const vols = state.volumesOf(ctx.str('node'), storage);
    if (vols.has(volid)) fail(`volume '${volid}' already exists`);
    vols.set(volid, { volid, format, size, content: 'images', ctime: state.nowS(), vmid });
    return volid;
  });

  r.on('GET', '/nodes/{node}/storage/{storage}/content/{volume}', (ctx) => {
    const v = volumeOf(ctx);
    const def = ctx.state.storage(ctx.str('storage'));
    return {
      path: `${def.path ?? '/dev'}/${v.volid.split(':')[1]}`,
      size: v.size,
      used: v.size,
      format: v.format,
      ...(v.notes !== undefined ? { notes: v.notes } : {}),
    };
  });
  r.on('PUT', '/nodes/{node}/storage/{storage}/content/{volume}', (ctx) => {
    const v = volumeOf(ctx);
    const notes = ctx.optStr('notes');
    if (notes !== undefined) v.notes = notes;
    return null;
  });
  r.on('DELETE', '/nodes/{node}/storage/{storage}/content/{volume}', (ctx) => {
    const v = volumeOf(ctx);
    const node = ctx.str('node');
    const storage = ctx.str('storage');
    for (const g of ctx.state.guests.values())
      if (ctx.state.diskEntries(g).some((d) => d.volid === v.volid))
        fail(`volume '${v.volid}' is in use by ${label(g)} ${g.vmid}`);
    return task(ctx, node, 'imgdel', v.volid, () => {
      ctx.state.volumesOf(node, storage).delete(v.volid);
    });
  });

  // PVE's order: the storage must have a path, the normalised name a suitable extension (400),
  // and only then the storage the content type.
  r.on('POST', '/nodes/{node}/storage/{storage}/upload', (ctx) => {
    const storage = ctx.str('storage');
    const def = ctx.state.storage(storage);
    if (def.path === undefined) fail(`can't upload to storage type '${def.type}'`);
    const content = ctx.str('content') as UploadContent;
    // pveproxy takes the name from the file part's header, trimmed; the form field is a fallback.
    const file = ctx.files.find((f) => f.field === 'filename');
    const raw = (file?.filename ?? ctx.str('filename')).replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, '');
    const filename = normalizeContentFilename(raw, 'byte');
    const format = contentFileFormat(content, filename);
    if (!def.content.includes(content)) fail(`storage '${storage}' does not support '${content}' content`);
    return uploadTask(ctx, content, filename, format, file?.data ?? Buffer.alloc(0));
  });
}
