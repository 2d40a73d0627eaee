/**
 * `vmplane exec <id> -- cmd args...`: hypeman's exec WebSocket (GET /instances/{id}/exec).
 *
 * The first frame is text JSON `{command, tty, env, cwd, timeout, rows, cols}`; stdin goes out in
 * binary frames, a window resize as the text `{"resize":{"rows","cols"}}`; output comes back in
 * binary frames (stdout and stderr merged, as hypeman sends them) and the last frame is the text
 * `{"exitCode":N}`, whose N becomes this command's exit code.
 */
import WebSocket from 'ws';
import { type Client, segment } from '../client.js';
import { ApiError, CliError, describeCause, parseErrorBody, UnreachableError, UsageError } from '../errors.js';

export interface ExecFlags {
  tty?: boolean;
  interactive?: boolean;
  env?: string[];
  cwd?: string;
  timeout?: string;
}

export interface ExecIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  signals: Pick<NodeJS.Process, 'on' | 'off'>;
}

/** The first frame, checked before anything is sent. */
export function execRequest(command: readonly string[], flags: ExecFlags, size?: { rows: number; cols: number }) {
  if (command.length === 0) throw new UsageError('give the command after --, e.g. vmplane exec web-1 -- uname -a');
  const request: {
    command: string[];
    tty: boolean;
    env?: Record<string, string>;
    cwd?: string;
    timeout?: number;
    rows?: number;
    cols?: number;
  } = { command: [...command], tty: flags.tty === true };
  if (flags.env && flags.env.length > 0) {
    request.env = {};
    for (const pair of flags.env) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`-e takes KEY=VALUE, not ${JSON.stringify(pair)}`);
      request.env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  if (flags.cwd !== undefined) request.cwd = flags.cwd;
  if (flags.timeout !== undefined) {
    if (!/^[0-9]+$/.test(flags.timeout))
      throw new UsageError(`--timeout is in whole seconds, not ${JSON.stringify(flags.timeout)}`);
    request.timeout = Number(flags.timeout);
  }
  if (request.tty && size) {
    request.rows = size.rows;
    request.cols = size.cols;
  }
  return request;
}

function wsUrl(client: Client, id: string): string {
  const url = client.url(`/instances/${segment(id)}/exec`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** Runs the command in the instance; resolves with the guest's exit code. */
export async function execInInstance(
  client: Client,
  id: string,
  command: readonly string[],
  flags: ExecFlags,
  io: ExecIo,
): Promise<number> {
  const stdout = io.stdout as NodeJS.WriteStream;
  const tty = flags.tty === true;
  const size = () => ({ rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 });
  const request = execRequest(command, flags, tty ? size() : undefined);
  if (tty && !io.stdin.isTTY) throw new UsageError('-t needs a terminal on stdin');
  // Stdin is forwarded for a TTY, for -i, and whenever it is piped; a terminal's stdin otherwise
  // stays ours (like `docker exec` without -i), so the guest never waits on keys nobody types.
  const forwardStdin = tty || flags.interactive === true || !io.stdin.isTTY;

  const ws = new WebSocket(wsUrl(client, id), { headers: client.authHeaders(), perMessageDeflate: false });
  let exitCode: number | undefined;
  let rawMode = false;
  const cleanups: (() => void)[] = [];

  const result = new Promise<number>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      // Refused before the upgrade (401, 404, 409 invalid_state): hypeman's JSON error body.
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const { message, code } = parseErrorBody(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
        reject(new ApiError(res.statusCode ?? 0, message, code));
      });
      res.on('error', reject);
    });
    ws.on('error', (error: Error) => {
      const code = describeCause(error);
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH')
        reject(new UnreachableError(client.baseUrl, error));
      else if (exitCode === undefined)
        reject(new CliError(`exec connection failed: ${error.message}`, { cause: error }));
    });
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        io.stdout.write(buf);
        return;
      }
      const text = buf.toString('utf8');
      try {
        const msg = JSON.parse(text) as { exitCode?: unknown; error?: unknown };
        if (typeof msg.exitCode === 'number') {
          exitCode = msg.exitCode;
          // The exit frame is the last: hypeman may drop the connection without a close frame.
          ws.close(1000);
          return;
        }
        if (typeof msg.error === 'string') {
          io.stderr.write(`error: ${msg.error}\n`);
          return;
        }
      } catch {
        // Not JSON: hypeman never sends this, but showing it beats losing it.
      }
      io.stdout.write(text);
    });
    ws.on('close', () => {
      if (exitCode !== undefined) resolve(exitCode);
      else reject(new CliError('the connection closed before the command reported its exit code'));
    });
    ws.on('open', () => {
      ws.send(JSON.stringify(request));
      if (forwardStdin) {
        if (tty) {
          io.stdin.setRawMode(true);
          rawMode = true;
        }
        const onData = (chunk: Buffer | string) => {
          if (ws.readyState === WebSocket.OPEN)
            ws.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, { binary: true });
        };
        io.stdin.on('data', onData);
        io.stdin.resume();
        cleanups.push(() => {
          io.stdin.off('data', onData);
          io.stdin.pause();
        });
      }
      if (tty) {
        const onResize = () => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: size() }));
        };
        io.signals.on('SIGWINCH', onResize);
        cleanups.push(() => io.signals.off('SIGWINCH', onResize));
      }
    });
  });

  try {
    return await result;
  } finally {
    for (const cleanup of cleanups) cleanup();
    if (rawMode) io.stdin.setRawMode(false);
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
  }
}
