import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { type CallOptions, type FormPart, InvalidArgumentError, multipartBody, path } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import { checkEnum, checkStorage, checkStorageFilename, checkText, optionalEnum, optionalVmid } from '../ids.js';
import { callOptions, options, readOptions } from '../options.js';
import type { Task } from '../task.js';
import type { ReadOptions } from '../transport.js';
import type { Storage, StorageContent } from '../types.js';
import type { Context } from './context.js';

export type StorageContentType = 'iso' | 'vztmpl' | 'import' | 'images' | 'rootdir' | 'backup' | 'snippets';
/** Every content type a storage may hold; node.storages() filters by the same list. */
export const CONTENT_TYPES: readonly StorageContentType[] = [
  'iso',
  'vztmpl',
  'import',
  'images',
  'rootdir',
  'backup',
  'snippets',
];
const UPLOAD_CONTENT = ['iso', 'vztmpl', 'import'] as const;
const CHECKSUMS = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;

export interface UploadOptions extends CallOptions {
  content: 'iso' | 'vztmpl' | 'import';
  /**
   * Name on the storage; defaults to the file's own name. At most 255 characters, without a
   * directory part or control characters (PVE replaces other characters than letters, digits,
   * `_ . -` by `_`).
   */
  filename?: string;
  /** Both or neither: PVE checks the uploaded file against it. */
  checksum?: string;
  checksumAlgorithm?: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
  /** Bytes of the file handed to the connection so far, and the file's size. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface DownloadUrlOptions extends CallOptions {
  content: 'iso' | 'vztmpl' | 'import';
  filename: string;
  checksum?: string;
  checksumAlgorithm?: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
  compression?: string;
  verifyCertificates?: boolean;
}

/** `/nodes/{node}/storage/{storage}`. */
export class StorageApi {
  readonly #ctx: Context;
  readonly node: string;
  readonly storage: string;

  /** @internal The node is checked by NodeApi. */
  constructor(ctx: Context, node: string, storage: string) {
    this.#ctx = ctx;
    this.node = node;
    this.storage = checkStorage(storage);
  }

  #p(sub: string): string {
    return `${path`/nodes/${this.node}/storage/${this.storage}`}${sub}`;
  }

  async content(opts: ReadOptions & { content?: StorageContentType; vmid?: number } = {}): Promise<StorageContent[]> {
    opts = options(opts);
    const params = { content: optionalEnum(opts.content, CONTENT_TYPES, 'content'), vmid: optionalVmid(opts.vmid) };
    return this.#ctx.t.get<StorageContent[]>(this.#p('/content'), { ...readOptions(opts), params });
  }

  async status(opts: ReadOptions = {}): Promise<Storage> {
    return this.#ctx.t.get<Storage>(this.#p('/status'), readOptions(opts));
  }

  /** Lets PVE fetch a URL into the storage (an ISO, a container template, a cloud image). */
  async downloadUrl(url: string, opts: DownloadUrlOptions): Promise<Task> {
    requiredOptions(opts);
    if (typeof url !== 'string' || !/^(https?|ftp):\/\/[^\s]+$/.test(url)) {
      throw new InvalidArgumentError({ message: 'url must be an http(s) URL', argument: 'url', backend: BACKEND });
    }
    const params = {
      url,
      content: checkEnum(opts.content, UPLOAD_CONTENT, 'content'),
      filename: checkStorageFilename(opts.filename),
      ...checksumParams(opts),
      compression: opts.compression === undefined ? undefined : checkText(opts.compression, 'compression', 32),
      'verify-certificates': opts.verifyCertificates,
    };
    const upid = await this.#ctx.t.post<string>(this.#p('/download-url'), { ...callOptions(opts), params });
    return this.#ctx.nodeTask(upid, this.node);
  }

  /**
   * Uploads a local file (multipart/form-data, streamed from disk) through the transport: the
   * client's auth, CSRF token, envelope and typed errors. PVE answers with the task that moves
   * the file into place. The file is read anew for the one retry after a 401 (PVE refuses a stale
   * ticket before it reads the body) and after a connection that failed before sending; the upload
   * is never repeated once it may have reached PVE. Default timeout: 1 h.
   */
  async upload(file: string, opts: UploadOptions): Promise<Task> {
    requiredOptions(opts);
    const content = checkEnum(opts.content, UPLOAD_CONTENT, 'content');
    checkText(file, 'file');
    const filename = checkStorageFilename(opts.filename ?? basename(file));
    const checksums = checksumParams(opts);
    const onProgress = opts.onProgress;
    if (onProgress !== undefined && typeof onProgress !== 'function') {
      throw new InvalidArgumentError({
        message: 'onProgress must be a function',
        argument: 'onProgress',
        backend: BACKEND,
      });
    }
    const size = await fileSize(file);
    const fields: FormPart[] = [{ name: 'content', data: content }];
    for (const [name, value] of Object.entries(checksums)) if (value !== undefined) fields.push({ name, data: value });
    const fileData = {
      size,
      async *chunks(): AsyncGenerator<Buffer> {
        let sent = 0;
        if (size === 0) return;
        // Exactly the bytes counted in Content-Length, even if the file grows meanwhile.
        for await (const chunk of createReadStream(file, { end: size - 1 })) {
          yield chunk as Buffer;
          sent += (chunk as Buffer).length;
          onProgress?.(Math.min(sent, size), size);
        }
      },
    };
    const upid = await this.#ctx.t.send<string>('POST', this.#p('/upload'), {
      signal: opts.signal,
      timeout: opts.timeout ?? 60 * 60 * 1000,
      body: {
        reopenable: true,
        open: () => {
          const body = multipartBody([...fields, { name: 'filename', filename, data: fileData }], BACKEND);
          return { contentType: body.contentType, length: body.length, data: body.chunks };
        },
      },
    });
    return this.#ctx.nodeTask(upid, this.node);
  }
}

function requiredOptions(opts: unknown): void {
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidArgumentError({ message: 'options are required', argument: 'options', backend: BACKEND });
  }
}

function checksumParams(opts: { checksum?: unknown; checksumAlgorithm?: unknown }) {
  const algorithm = optionalEnum(opts.checksumAlgorithm, CHECKSUMS, 'checksumAlgorithm');
  const checksum = opts.checksum === undefined ? undefined : checkText(opts.checksum, 'checksum', 512);
  // The schema makes each require the other.
  if ((checksum === undefined) !== (algorithm === undefined)) {
    throw new InvalidArgumentError({
      message: 'checksum and checksumAlgorithm go together: pass both or neither',
      argument: checksum === undefined ? 'checksum' : 'checksumAlgorithm',
      backend: BACKEND,
    });
  }
  if (checksum !== undefined && !/^[0-9a-fA-F]+$/.test(checksum)) {
    throw new InvalidArgumentError({ message: 'checksum must be hex digits', argument: 'checksum', backend: BACKEND });
  }
  return { 'checksum-algorithm': algorithm, checksum };
}

async function fileSize(file: string): Promise<number> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a regular file');
    return info.size;
  } catch (error) {
    throw new InvalidArgumentError({
      message: `file ${JSON.stringify(file)} cannot be uploaded: ${(error as Error).message}`,
      argument: 'file',
      backend: BACKEND,
      cause: error,
    });
  }
}
