import { posix } from 'node:path';
import type { ControlPlaneApi, GuestProcess } from '@vmplane/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { HttpError, sendError } from '../../errors.js';
import type { RouteDeps } from '../../server.js';
import { idParams, WRITE } from './common.js';

/** The instance a WebSocket request resolved to before the upgrade. */
const resolved = new WeakMap<FastifyRequest, string>();

/**
 * Before the upgrade, as hypeman does: the instance is looked up (404/409 `ambiguous`) and must be
 * Running (409 `invalid_state`), so a client learns why with a status code, not a dropped socket.
 */
function requireRunning(plane: ControlPlaneApi) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const instance = await plane.getInstance((request.params as { id: string }).id);
      if (instance.state !== 'Running')
        throw new HttpError(409, 'invalid_state', `instance must be running (current state: ${instance.state})`);
      resolved.set(request, instance.id);
    } catch (error) {
      return sendError(request, reply, error);
    }
  };
}

/** Messages that arrive while the first frame is handled are kept, in order, for the session. */
function firstFrame(socket: WebSocket): Promise<{ first: RawData; binary: boolean; rest: Array<[RawData, boolean]> }> {
  return new Promise((resolve, reject) => {
    const rest: Array<[RawData, boolean]> = [];
    let first: [RawData, boolean] | undefined;
    const onMessage = (data: RawData, binary: boolean) => {
      if (!first) {
        first = [data, binary];
        resolve({ first: data, binary, rest });
      } else rest.push([data, binary]);
    };
    socket.on('message', onMessage);
    socket.once('close', () => {
      if (!first) reject(new Error('closed before the first message'));
    });
    // The session's own listener takes over; this one only queued what came early.
    (socket as WebSocket & { __dropQueue?: () => void }).__dropQueue = () => socket.off('message', onMessage);
  });
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Closes after the client has had time to act on the last message: the SDK's cpFromInstance
 * settles only once its file is flushed, and a close that arrives first fails its copy. The
 * client closes itself once done; the timer only covers one that does not.
 */
function closeSoon(socket: WebSocket, ms = 5_000): void {
  if (socket.readyState !== socket.OPEN) return;
  const timer = setTimeout(() => {
    if (socket.readyState === socket.OPEN) socket.close(1000);
  }, ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function sendText(socket: WebSocket, value: unknown): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(value));
}

interface ExecFrame {
  command?: string[] | null;
  tty?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  timeout?: number;
  wait_for_agent?: number;
  rows?: number;
  cols?: number;
}

function parseJson(socket: WebSocket, data: RawData, binary: boolean, shape: 'exec' | 'cp'): unknown {
  const fail = (message: string) => {
    sendText(socket, shape === 'exec' ? { error: message } : { type: 'error', message });
    socket.close(1008, 'bad first message');
    return undefined;
  };
  if (binary) return fail('first message must be JSON text');
  try {
    const value = JSON.parse(toBuffer(data).toString('utf8'));
    if (!value || typeof value !== 'object' || Array.isArray(value)) return fail('invalid JSON: not an object');
    return value;
  } catch (error) {
    return fail(`invalid JSON: ${(error as Error).message}`);
  }
}

export function hypemanWebSocketRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { plane } = deps;
  const options = {
    websocket: true as const,
    config: WRITE,
    schema: { params: idParams, hide: true },
    preHandler: requireRunning(plane),
  };

  app.get<{ Params: { id: string } }>('/instances/:id/exec', options, async (socket, request) => {
    const id = resolved.get(request);
    if (!id) return socket.close(1011, 'not resolved');
    let frame: Awaited<ReturnType<typeof firstFrame>>;
    try {
      frame = await firstFrame(socket);
    } catch {
      return;
    }
    const req = parseJson(socket, frame.first, frame.binary, 'exec') as ExecFrame | undefined;
    if (!req) return;
    const command = Array.isArray(req.command) && req.command.length > 0 ? req.command.map(String) : ['/bin/sh'];
    const tty = req.tty === true;
    let proc: GuestProcess;
    try {
      const execReq: Parameters<ControlPlaneApi['exec']>[1] = { command, tty, interactive: true };
      if (req.env && typeof req.env === 'object') execReq.env = req.env;
      if (typeof req.cwd === 'string' && req.cwd !== '') execReq.cwd = req.cwd;
      if (tty && typeof req.rows === 'number' && req.rows > 0) execReq.rows = req.rows;
      if (tty && typeof req.cols === 'number' && req.cols > 0) execReq.cols = req.cols;
      proc = await plane.exec(id, execReq);
    } catch (error) {
      // As hypeman: the error as output (so a CLI prints it), then exit code 127.
      if (socket.readyState === socket.OPEN) socket.send(Buffer.from(`Error: ${(error as Error).message}\r\n`));
      sendText(socket, { exitCode: 127 });
      socket.close(1000);
      return;
    }
    const onInput = (data: RawData, binary: boolean) => {
      const bytes = toBuffer(data);
      if (!binary && tty) {
        try {
          const msg = JSON.parse(bytes.toString('utf8')) as { resize?: { rows?: number; cols?: number } };
          const r = msg.resize;
          if (r && typeof r.rows === 'number' && typeof r.cols === 'number' && r.rows > 0 && r.cols > 0) {
            void proc.resize(r.rows, r.cols).catch(() => {});
            return;
          }
        } catch {
          // Not a resize: it is input.
        }
      }
      void proc.write(bytes).catch(() => {});
    };
    (socket as WebSocket & { __dropQueue?: () => void }).__dropQueue?.();
    for (const [data, binary] of frame.rest) onInput(data, binary);
    socket.on('message', onInput);
    // The client closing is the only stdin end hypeman has; the command then finishes or is left.
    socket.once('close', () => void proc.closeStdin().catch(() => {}));
    const timer =
      typeof req.timeout === 'number' && req.timeout > 0
        ? setTimeout(() => void proc.signal(9).catch(() => {}), req.timeout * 1000)
        : undefined;
    const pump = async (stream: AsyncIterable<Uint8Array>) => {
      for await (const chunk of stream) if (socket.readyState === socket.OPEN) socket.send(chunk, { binary: true });
    };
    const pumps = Promise.allSettled([pump(proc.stdout), pump(proc.stderr)]);
    let code = 127;
    try {
      code = await proc.exit;
    } catch (error) {
      if (socket.readyState === socket.OPEN) socket.send(Buffer.from(`Error: ${(error as Error).message}\r\n`));
    }
    await pumps;
    if (timer) clearTimeout(timer);
    sendText(socket, { exitCode: code });
    // Unlike hypeman (which drops the TCP connection), a proper close frame.
    if (socket.readyState === socket.OPEN) socket.close(1000);
    proc.close();
  });

  app.get<{ Params: { id: string } }>('/instances/:id/cp', options, async (socket, request) => {
    const id = resolved.get(request);
    if (!id) return socket.close(1011, 'not resolved');
    let frame: Awaited<ReturnType<typeof firstFrame>>;
    try {
      frame = await firstFrame(socket);
    } catch {
      return;
    }
    const req = parseJson(socket, frame.first, frame.binary, 'cp') as
      | { direction?: string; guest_path?: string; is_dir?: boolean; mode?: number; follow_links?: boolean }
      | undefined;
    if (!req) return;
    const path = req.guest_path;
    const fail = (message: string) => {
      sendText(socket, { type: 'error', message, ...(path ? { path } : {}) });
      socket.close(1000);
    };
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0'))
      return fail('guest_path must be an absolute path');
    if (req.direction === 'to') return copyTo(plane, id, socket, frame, path, req.is_dir === true, req.mode ?? 0);
    if (req.direction === 'from') return copyFrom(plane, id, socket, path);
    return fail(`invalid direction: ${String(req.direction)} (must be 'to' or 'from')`);
  });
}

async function copyTo(
  plane: ControlPlaneApi,
  id: string,
  socket: WebSocket,
  frame: Awaited<ReturnType<typeof firstFrame>>,
  path: string,
  isDir: boolean,
  mode: number,
): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  const done = new Promise<boolean>((resolve) => {
    const onData = (data: RawData, binary: boolean) => {
      const bytes = toBuffer(data);
      if (binary) {
        chunks.push(bytes);
        size += bytes.length;
        return;
      }
      try {
        if ((JSON.parse(bytes.toString('utf8')) as { type?: string }).type === 'end') resolve(true);
      } catch {
        // Other text frames are ignored, as hypeman ignores them.
      }
    };
    (socket as WebSocket & { __dropQueue?: () => void }).__dropQueue?.();
    for (const [d, b] of frame.rest) onData(d, b);
    socket.on('message', onData);
    socket.once('close', () => resolve(false));
  });
  if (!(await done)) return;
  try {
    if (isDir) {
      const perm = (mode || 0o755).toString(8);
      const proc = await plane.exec(id, { command: ['mkdir', '-p', '-m', perm, path] });
      const code = await proc.exit;
      proc.close();
      if (code !== 0) throw new Error(`cannot create directory: ${path}`);
    } else {
      const info = await plane.stat(id, path);
      if (info.exists && info.is_dir) throw new Error(`cannot copy file: ${path} is a directory`);
      await plane.writeFile(id, path, Buffer.concat(chunks, size), { mode: mode || 0o644 });
    }
    sendText(socket, { type: 'result', success: true, ...(size > 0 && !isDir ? { bytes_written: size } : {}) });
  } catch (error) {
    sendText(socket, { type: 'result', success: false, error: (error as Error).message });
  }
  closeSoon(socket);
}

async function copyFrom(plane: ControlPlaneApi, id: string, socket: WebSocket, path: string): Promise<void> {
  const mtime = Math.floor(Date.now() / 1000);
  try {
    const info = await plane.stat(id, path);
    if (!info.exists) throw new Error(`stat: lstat ${path}: no such file or directory`);
    const base = posix.basename(path) || '.';
    const entries: Array<{ rel: string; guest: string }> = [{ rel: base, guest: path }];
    if (info.is_dir) {
      // The plane lists no directories: find(1) in the guest does, one path per line.
      const proc = await plane.exec(id, { command: ['find', path, '-mindepth', '1'] });
      let out = '';
      for await (const chunk of proc.stdout) out += Buffer.from(chunk).toString('utf8');
      await proc.exit;
      proc.close();
      for (const line of out.split('\n').filter(Boolean).sort())
        entries.push({ rel: posix.join(base, posix.relative(path, line)), guest: line });
    }
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (!entry) continue;
      const final = i === entries.length - 1;
      const st = i === 0 ? info : await plane.stat(id, entry.guest);
      const header: Record<string, unknown> = {
        type: 'header',
        path: entry.rel,
        mode: (st.mode ?? 0) & 0o7777,
        is_dir: st.is_dir === true,
        size: st.is_dir ? 0 : (st.size ?? 0),
        mtime,
      };
      if (st.is_symlink) {
        header.is_symlink = true;
        header.link_target = st.link_target ?? '';
      }
      sendText(socket, header);
      if (st.is_file && !st.is_symlink)
        for await (const chunk of await plane.readFile(id, entry.guest))
          if (socket.readyState === socket.OPEN) socket.send(chunk, { binary: true });
      sendText(socket, { type: 'end', final });
    }
  } catch (error) {
    sendText(socket, { type: 'error', message: (error as Error).message, path });
  }
  closeSoon(socket);
}
