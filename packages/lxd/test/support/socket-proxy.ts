import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REQUEST_LINE = /(?:^|\r\n)(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/1\.1\r\n/g;

/**
 * A unix-socket proxy in front of the real LXD socket, so that tests can cut live connections
 * (what a daemon restart or a network drop does) while every byte still comes from LXD itself.
 * It also counts what clients send, so that a test can tell that nothing reached the daemon.
 */
export class SocketProxy {
  readonly path: string;
  /** Connections accepted so far. */
  connections = 0;
  /** Bytes clients sent so far. */
  bytesFromClients = 0;
  /** `METHOD /path?query` of every HTTP request clients sent (request lines seen in their bytes). */
  readonly requests: string[] = [];
  private readonly server: Server;
  private readonly pairs = new Set<Socket>();
  private dir: string;

  private constructor(dir: string, target: string) {
    this.dir = dir;
    this.path = join(dir, 'lxd.socket');
    this.server = createServer((client) => {
      this.connections++;
      const upstream = createConnection(target);
      this.pairs.add(client);
      this.pairs.add(upstream);
      client.on('data', (chunk: Buffer) => {
        this.bytesFromClients += chunk.length;
        // Request lines start a chunk or follow a CRLF; only the head of a chunk is searched.
        for (const m of chunk.subarray(0, 8192).toString('latin1').matchAll(REQUEST_LINE)) {
          this.requests.push(`${m[1]} ${m[2]}`);
        }
      });
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(client);
        this.pairs.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  static async start(target = '/var/lib/lxd/unix.socket'): Promise<SocketProxy> {
    const proxy = new SocketProxy(await mkdtemp(join(tmpdir(), 'vmpt-proxy-')), target);
    await new Promise<void>((resolve) => proxy.server.listen(proxy.path, resolve));
    return proxy;
  }

  /** Cuts every open connection; new ones still go through. */
  cutAll(): number {
    const n = this.pairs.size / 2;
    for (const s of this.pairs) s.destroy();
    this.pairs.clear();
    return n;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
