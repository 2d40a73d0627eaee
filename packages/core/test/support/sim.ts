import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

/**
 * A small qcow2 file: a version-3 header (magic `QFI\xfb`, 64 KiB clusters, `virtualGiB` of
 * virtual size) padded with deterministic bytes to `bytes`. Enough for anything that checks the
 * magic; nothing boots from it.
 */
export function tinyQcow2(bytes = 256 * 1024, virtualGiB = 2, seed = 1): Buffer {
  const buf = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    buf[i] = x & 0xff;
  }
  buf.fill(0, 0, 112);
  Buffer.from([0x51, 0x46, 0x49, 0xfb]).copy(buf, 0);
  buf.writeUInt32BE(3, 4); // version
  buf.writeUInt32BE(16, 20); // cluster_bits
  buf.writeBigUInt64BE(BigInt(virtualGiB) * 1024n ** 3n, 24); // size
  buf.writeUInt32BE(104, 100); // header_length
  return buf;
}

export function sha(algorithm: 'sha256' | 'sha512', data: Buffer | string): string {
  return createHash(algorithm).update(data).digest('hex');
}

export interface ImageServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Requests so far, as `METHOD /path`. */
  requests: string[];
  /** Adds or replaces a file. */
  set(path: string, body: Buffer | string): void;
  /** A path that accepts the request and then never answers (a stalled mirror). */
  stall(path: string): void;
  close(): Promise<void>;
}

/** A loopback HTTP server for image files and checksum files; closed after the test file. */
export async function startImageServer(files: Record<string, Buffer | string> = {}): Promise<ImageServer> {
  const table = new Map<string, Buffer>(Object.entries(files).map(([p, b]) => [p, Buffer.from(b)]));
  const stalled = new Set<string>();
  const requests: string[] = [];
  const open = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    if (stalled.has(path)) {
      open.add(res);
      res.on('close', () => open.delete(res));
      return;
    }
    const body = table.get(path);
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  after(close);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    set: (p, b) => table.set(p, Buffer.from(b)),
    stall: (p) => stalled.add(p),
    close,
  };
}

// --- an SSH server for the ssh/ tests --------------------------------------------------------

export interface TestSshAccount {
  /** OpenSSH public key lines. */
  keys?: string[];
  password?: string;
}

export interface TestExec {
  user: string;
  command: string;
  stdin: string;
}

export interface TestSshServer {
  host: string;
  port: number;
  hostKey: string;
  /** Every command run, with the user and its whole stdin. */
  execs: TestExec[];
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/**
 * An ssh2 server on 127.0.0.1: key and password logins for `accounts`, `exec` answered by
 * `answer` (default: `true` exits 0, anything else 127). `silent` accepts TCP connections and never
 * sends a banner, as a booting guest's half-started sshd or a tarpit does.
 */
export async function startSshServer(
  opts: {
    accounts?: Record<string, TestSshAccount>;
    answer?: (
      e: TestExec,
    ) =>
      | { stdout?: string; stderr?: string; code?: number }
      | Promise<{ stdout?: string; stderr?: string; code?: number }>;
    silent?: boolean;
  } = {},
): Promise<TestSshServer> {
  const { Server, utils } = (await import('ssh2')).default;
  const { createServer: createTcp } = await import('node:net');
  // ssh2's generator makes a broken key about once in 128: use vmplane's.
  const { generateEd25519 } = await import('../../src/ssh/keys.js');
  const made = generateEd25519('test-host');
  const host = { private: made.privateKey, public: made.publicKey };
  const execs: TestExec[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const ssh = new Server({ hostKeys: [host.private] }, (client) => {
    let user = '';
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      const account = opts.accounts?.[ctx.username];
      if (ctx.method === 'password' && account?.password !== undefined && ctx.password === account.password) {
        user = ctx.username;
        ctx.accept();
        return;
      }
      if (ctx.method === 'publickey' && account?.keys) {
        const ok = account.keys.some((line) => {
          const k = utils.parseKey(line);
          return (
            !(k instanceof Error) &&
            k.getPublicSSH().equals(ctx.key.data) &&
            (ctx.signature === undefined || k.verify(ctx.blob ?? Buffer.alloc(0), ctx.signature, ctx.hashAlgo))
          );
        });
        if (ok) {
          user = ctx.username;
          ctx.accept();
          return;
        }
      }
      ctx.reject(['publickey', 'password']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => {
          const stream = accept();
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', async () => {
            const e = { user, command: info.command, stdin: Buffer.concat(chunks).toString('utf8') };
            execs.push(e);
            const r = opts.answer
              ? await opts.answer(e)
              : e.command === 'true'
                ? { code: 0 }
                : { code: 127, stderr: `sh: 1: ${e.command.split(' ')[0]}: not found\n` };
            if (r.stdout) stream.write(r.stdout);
            if (r.stderr) stream.stderr.write(r.stderr);
            stream.exit(r.code ?? 0);
            stream.end();
          });
        });
      });
    });
  });
  let connections = 0;
  const tcp = createTcp((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!opts.silent) ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const port = (tcp.address() as AddressInfo).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  };
  after(close);
  const parsed = utils.parseKey(host.public);
  if (parsed instanceof Error) throw parsed;
  return {
    host: '127.0.0.1',
    port,
    hostKey: `SHA256:${createHash('sha256').update(parsed.getPublicSSH()).digest('base64').replace(/=+$/, '')}`,
    execs,
    get connections() {
      return connections;
    },
    close,
  };
}

// --- the Proxmox simulator and a provider over it --------------------------------------------

export const GATEWAY = '127.77.0.1';

/** Commands the init step runs that the simulator's built-in shell does not know, answered 0. */
const SCRIPTED = /apt-get|dnf |hostnamectl|useradd|usermod|getent|authorized_keys/;

export interface SimWorld {
  sim: import('@vmplane/proxmox-sim').Simulator;
  /** Commands run in guests over SSH that the test's script answered (vmid, user, command, stdin). */
  guestCommands: { vmid: number; user: string; command: string; stdin: string }[];
  /** The port guests serve SSH on in this file. */
  sshPort: number;
}

/**
 * A simulator for one test file, closed after it. Guests' package managers and the like are
 * scripted (exit 0, recorded); `sudo`, `chpasswd`, `cloud-init status`, `systemctl` and `true`
 * are the simulator's own.
 */
export async function startSim(
  options: import('@vmplane/proxmox-sim').SimulatorOptions = {},
  answer?: (c: {
    vmid: number;
    user: string;
    command: string;
    stdin: string;
  }) => { exitcode?: number; stdout?: string; stderr?: string } | undefined,
): Promise<SimWorld> {
  const { startSimulator } = await import('@vmplane/proxmox-sim');
  const guestCommands: SimWorld['guestCommands'] = [];
  // A port of this file's own: test files run side by side, guests of each on 127.77.0.<vmid>.
  const sshPort = 20_000 + Math.floor(Math.random() * 20_000);
  const sim = await startSimulator({
    nodes: 2,
    guests: 0,
    taskDuration: 20,
    bootDelayMs: 50,
    guestSshPort: sshPort,
    guestExec: async (req) => {
      const c = { vmid: req.vmid, user: req.user, command: req.command, stdin: await req.stdin };
      const own = answer?.(c);
      if (own) {
        guestCommands.push(c);
        return own;
      }
      if (!SCRIPTED.test(req.command)) return undefined;
      guestCommands.push(c);
      return { exitcode: 0, stdout: '' };
    },
    ...options,
  });
  after(() => sim.close());
  return { sim, guestCommands, sshPort };
}

/** The files a loopback mirror serves for `images`: each image and its checksum file, official layout. */
export function mirrorFiles(
  catalogue: import('../../src/images/catalogue.js').ImageCatalogue,
  names: readonly string[],
  body: Buffer = tinyQcow2(),
): Record<string, Buffer | string> {
  const files: Record<string, Buffer | string> = {};
  for (const name of names) {
    const image = catalogue.get(name);
    const rel = (u: string) => new URL(u).pathname;
    files[rel(image.url)] = body;
    const hex = sha(image.checksumAlgorithm, body);
    files[rel(image.checksumUrl)] =
      image.checksumFormat === 'bsd'
        ? `# ${image.file}: ${body.length} bytes\nSHA256 (${image.file}) = ${hex}\n`
        : `${hex}  ${image.file}\n`;
  }
  return files;
}
