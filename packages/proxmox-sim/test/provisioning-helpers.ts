import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import ssh2 from 'ssh2';

/** A qcow2 file as small as it gets: a version-3 header claiming `virtualSize`, then filler. */
export function qcow2Image(virtualSize: number, fileSize = 320 * 1024): Buffer {
  const b = Buffer.alloc(fileSize);
  b.writeUInt32BE(0x514649fb, 0); // QFI\xfb
  b.writeUInt32BE(3, 4);
  b.writeUInt32BE(16, 20); // cluster_bits
  b.writeBigUInt64BE(BigInt(virtualSize), 24);
  for (let i = 512; i < fileSize; i++) b[i] = (i * 31) & 0xff;
  return b;
}

export const hex = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('hex');

/**
 * A loopback HTTP server with fixed files (path -> bytes), closed after the file's tests.
 * `/redirect/PATH` redirects to `/PATH`; `/to?url=URL` redirects to any URL.
 */
export async function fileServer(files: Record<string, Buffer>): Promise<{ url: (path: string) => string }> {
  const server = http.createServer((req, res) => {
    const { pathname: path, searchParams } = new URL(req.url ?? '/', 'http://x');
    if (path === '/to') {
      res.writeHead(302, { Location: searchParams.get('url') ?? '/' }).end();
      return;
    }
    if (path.startsWith('/redirect/')) {
      res.writeHead(302, { Location: `/${path.slice('/redirect/'.length)}` }).end();
      return;
    }
    const body = files[path];
    if (!body) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: (path) => `http://127.0.0.1:${port}${path}` };
}

export function clientKey(): { privateKey: string; publicKey: string } {
  const k = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'tester@vmplane' });
  return { privateKey: k.private, publicKey: k.public };
}

export interface Login {
  host: string;
  port: number;
  username: string;
  privateKey?: string;
  password?: string;
  /** The host key the client must see (OpenSSH public key line). */
  hostKey?: string;
}

export interface ExecResult {
  code: number | undefined;
  stdout: string;
  stderr: string;
}

/** Connects, runs one command (writing `stdin` and closing it, when given), and disconnects. */
export async function sshExec(login: Login, command: string, stdin?: string): Promise<ExecResult> {
  return (await sshStart(login, command, stdin)).done;
}

/**
 * Starts a command and resolves once the guest has accepted it; `done` settles when its channel
 * closes (the client disconnects then).
 */
export async function sshStart(login: Login, command: string, stdin?: string): Promise<{ done: Promise<ExecResult> }> {
  const client = await sshConnect(login);
  return new Promise((started, reject) => {
    client.exec(command, (err, stream) => {
      if (err) {
        client.end();
        reject(err);
        return;
      }
      const done = new Promise<ExecResult>((resolve) => {
        let stdout = '';
        let stderr = '';
        let code: number | undefined;
        stream.on('data', (c: Buffer) => {
          stdout += c.toString();
        });
        stream.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
        });
        stream.on('exit', (c: number | null) => {
          code = c ?? undefined;
        });
        stream.on('close', () => {
          client.end();
          resolve({ code, stdout, stderr });
        });
      });
      if (stdin !== undefined) stream.end(stdin);
      started({ done });
    });
  });
}

/** An authenticated client; rejects with ssh2's error (e.g. "All configured authentication methods failed"). */
export function sshConnect(login: Login, readyTimeout = 5_000): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    // Errors after the first (a reset when the guest goes down) must not go unhandled.
    client.on('error', (e) => {
      client.end();
      reject(e);
    });
    client.connect({
      host: login.host,
      port: login.port,
      username: login.username,
      readyTimeout,
      ...(login.privateKey !== undefined ? { privateKey: login.privateKey } : {}),
      ...(login.password !== undefined ? { password: login.password } : {}),
      ...(login.hostKey !== undefined
        ? {
            hostVerifier: (key: Buffer) => {
              const want = ssh2.utils.parseKey(login.hostKey as string);
              return !(want instanceof Error) && want.getPublicSSH().equals(key);
            },
          }
        : {}),
    });
  });
}
