import { createHash } from 'node:crypto';
import type { Ctx } from '../context.js';
import { type ChecksumAlgorithm, fail, PveError, type Task, type Volume } from '../state.js';
import { type FetchedFile, fetchUrl, inspectImage, isLoopbackHost, WgetError } from '../url-fetch.js';
import { MiB } from './common.js';
import type { Routes } from './router.js';
import { CONTENT_DIRS, contentFileFormat, normalizeContentFilename, type UploadContent } from './storage-files.js';

/**
 * `download-url`, as pve-storage's download_url and pve-common's download_file_from_url run it: the
 * checks in the API call (file-based storage, content type, file name), then a task that refuses to
 * replace an existing file, fetches the URL for real, verifies the checksum and the image, and only
 * then adds the volume. URLs that are not on loopback are not fetched unless the simulator was
 * started with `remoteDownloads: 'fetch'` (see SimEnv.downloads).
 */

/** What the simulator does with a URL whose host is not a loopback address. */
export type RemoteDownloads = 'placeholder' | 'fetch' | 'fail';

export interface DownloadSettings {
  remote: RemoteDownloads;
  maxBytes: number;
}

const PLACEHOLDER_SIZE = 512 * MiB;

/** The digest of a file whose bytes the simulator never had (a seeded volume): that of no bytes. */
const EMPTY_DIGEST = (algorithm: ChecksumAlgorithm) => createHash(algorithm).digest('hex');

interface DownloadRequest {
  url: string;
  dest: string;
  content: UploadContent;
  format: string;
  checksum: { algorithm: ChecksumAlgorithm; digest: string } | undefined;
  compression: string | undefined;
  verifyCertificates: boolean;
}

async function download(
  ctx: Ctx,
  task: Task,
  signal: AbortSignal,
  req: DownloadRequest,
  existing: () => Volume | undefined,
): Promise<FetchedFile | 'keep' | 'placeholder'> {
  const log = (line: string) => task.log.push(line);
  const settings = ctx.env.downloads;
  if (req.compression !== undefined && req.content !== 'iso')
    throw new PveError(500, `decompression not supported for ${req.content}`);
  log(`downloading ${req.url} to ${req.dest}`);
  const old = existing();
  if (old) {
    if (!req.checksum) throw new PveError(500, `refusing to override existing file '${req.dest}'`);
    const { algorithm, digest } = req.checksum;
    const got = old.digests?.[algorithm] ?? EMPTY_DIGEST(algorithm);
    if (got === digest.toLowerCase()) {
      log('calculating checksum of existing file...OK, got correct file already, no need to download');
      return 'keep';
    }
    log('calculating checksum of existing file...');
    throw new PveError(500, `checksum mismatch: got '${got}' != expect '${digest}', aborting`);
  }
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new PveError(500, `download failed: ${req.url}: Invalid host name.`);
  }
  if (!isLoopbackHost(url.hostname) && settings.remote !== 'fetch') {
    if (settings.remote === 'fail')
      throw new PveError(500, `download failed: wget: unable to resolve host address '${url.hostname}'`);
    log(`not fetched: '${url.host}' is not a loopback address; a placeholder of ${PLACEHOLDER_SIZE} bytes stands in`);
    return 'placeholder';
  }
  if (req.compression !== undefined) throw new PveError(500, 'the simulator does not decompress downloads');
  let file: FetchedFile;
  try {
    file = await fetchUrl(req.url, {
      verifyCertificates: req.verifyCertificates,
      signal,
      maxBytes: settings.maxBytes,
      allowHost: (host) => settings.remote === 'fetch' || isLoopbackHost(host),
      log,
      now: () => new Date(ctx.state.now()),
    });
  } catch (e) {
    if (e instanceof WgetError) throw new PveError(500, `download failed: ${e.message}`);
    throw e;
  }
  if (req.checksum) {
    const got = file.digests[req.checksum.algorithm];
    if (got !== req.checksum.digest.toLowerCase()) {
      log('calculating checksum...');
      throw new PveError(500, `checksum mismatch: got '${got}' != expect '${req.checksum.digest}'`);
    }
    log('calculating checksum...OK, checksum verified');
  }
  return file;
}

export function register(r: Routes): void {
  // PVE's order: a file-based storage, the content type, then the normalised name (400).
  r.on('POST', '/nodes/{node}/storage/{storage}/download-url', (ctx) => {
    const state = ctx.state;
    const node = ctx.str('node');
    const storage = ctx.str('storage');
    const def = state.storage(storage);
    if (def.path === undefined) fail(`can't upload to storage type '${def.type}', not a file based storage!`);
    const content = ctx.str('content') as UploadContent;
    if (!def.content.includes(content)) fail(`storage '${storage}' is not configured for content-type '${content}'`);
    const filename = normalizeContentFilename(ctx.str('filename'), 'char');
    const format = contentFileFormat(content, filename);
    const checksum = ctx.optStr('checksum');
    const algorithm = ctx.optStr('checksum-algorithm') as ChecksumAlgorithm | undefined;
    const volid = `${storage}:${content}/${filename}`;
    const req: DownloadRequest = {
      url: ctx.str('url'),
      dest: `${def.path}/${CONTENT_DIRS[content]}/${filename}`,
      content,
      format,
      checksum: checksum && algorithm ? { algorithm, digest: checksum } : undefined,
      compression: ctx.optStr('compression'),
      verifyCertificates: ctx.bool('verify-certificates', true),
    };
    const vols = () => state.volumesOf(node, storage);
    const task = state.startTask(node, 'download', filename, ctx.taskUser, undefined, {
      work: async (t, signal) => {
        const got = await download(ctx, t, signal, req, () => vols().get(volid));
        if (got === 'keep') return () => {};
        const size = got === 'placeholder' ? PLACEHOLDER_SIZE : got.size;
        const image =
          got !== 'placeholder' && content === 'import'
            ? inspectImage(format, got.head, got.size, `${req.dest}.tmp.${t.pid}`)
            : undefined;
        return () => {
          const volume: Volume = { volid, content, format, size, ctime: state.nowS() };
          if (image) volume.virtualSize = image.virtualSize;
          if (got !== 'placeholder') volume.digests = got.digests;
          vols().set(volid, volume);
          t.log.push(`download of '${req.url}' to '${req.dest}' finished`);
        };
      },
    });
    return task.upid;
  });
}
