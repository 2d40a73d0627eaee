import type { Ctx } from '../context.js';
import { fail, parseSize } from '../state.js';
import { MiB, task } from './common.js';
import { label } from './guest-model.js';
import type { Routes } from './router.js';
import { storageStatus } from './summaries.js';

/** Storage: per-node status and content, volume allocation and deletion, upload and download-url. */

function volumeOf(ctx: Ctx) {
  const storage = ctx.str('storage');
  ctx.state.storage(storage);
  let volid = ctx.str('volume');
  if (!volid.includes(':')) volid = `${storage}:${volid}`;
  const v = ctx.state.volumesOf(ctx.str('node'), storage).get(volid);
  if (!v) return fail(`volume '${volid}' does not exist`);
  return v;
}
const CONTENT_DIRS: Record<string, string> = { iso: 'iso', vztmpl: 'vztmpl', import: 'import', backup: 'dump' };

function addVolumeTask(ctx: Ctx, type: string, content: string, filename: string, size: number): string {
  const state = ctx.state;
  const node = ctx.str('node');
  const storage = ctx.str('storage');
  const def = state.storage(storage);
  if (!def.content.includes(content)) fail(`storage '${storage}' does not support content-type '${content}'`);
  const volid = `${storage}:${CONTENT_DIRS[content] ?? content}/${filename}`;
  const format = /\.iso$/i.test(filename)
    ? 'iso'
    : /\.qcow2$/i.test(filename)
      ? 'qcow2'
      : /\.tar\.zst$/i.test(filename)
        ? 'tzst'
        : (filename.split('.').pop() ?? 'raw');
  return task(
    ctx,
    node,
    type,
    storage,
    () => {
      state.volumesOf(node, storage).set(volid, { volid, content, format, size, ctime: state.nowS() });
    },
    [
      `starting file import from: ${filename}`,
      `target node: ${node}`,
      `target file: ${def.path}/${volid.split(':')[1]}`,
      `file size is: ${size}`,
    ],
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

  r.on('POST', '/nodes/{node}/storage/{storage}/upload', (ctx) => {
    const file = ctx.files.find((f) => f.field === 'filename');
    const filename = (file?.filename ?? ctx.str('filename')).split('/').pop() ?? 'upload';
    return addVolumeTask(ctx, 'imgcopy', ctx.str('content'), filename, file?.data.length ?? 0);
  });
  r.on('POST', '/nodes/{node}/storage/{storage}/download-url', (ctx) => {
    const url = ctx.str('url');
    if (!/^(https?|ftp):\/\//.test(url)) fail(`invalid URL '${url}'`, 400);
    return addVolumeTask(ctx, 'download', ctx.str('content'), ctx.str('filename'), 512 * MiB);
  });
}
