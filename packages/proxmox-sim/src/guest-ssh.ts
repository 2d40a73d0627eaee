import * as net from 'node:net';
import ssh2 from 'ssh2';
import { checkPassword } from './crypt.js';

/**
 * One guest's SSH server (an `ssh2` server on the guest's address): public-key and password logins
 * for the accounts cloud-init made, `exec` requests answered by the guest runtime with standard
 * input readable and an exit status. It listens with a plain TCP server and hands sockets to ssh2,
 * so that a "silent" guest can accept connections and never send its banner.
 */

export interface SshAccount {
  /** A SHA-256 crypt hash (as cloud-init sets `cipassword`) or a clear-text password. */
  password?: string | undefined;
  /** `type base64 [comment]` lines. */
  keys: string[];
}

/** A command's standard input: what arrived so far, and whether the client has closed it. */
export interface StdinSource {
  /** The whole input, once the client has sent EOF (or closed the channel). */
  readonly all: Promise<string>;
  /** The whole input if it has ended already, else undefined. */
  now(): string | undefined;
}

export type ExecOutcome =
  | { exitcode: number; stdout: string; stderr: string; action?: 'reboot' | 'poweroff' | undefined }
  | 'hang';

export interface SshGuestHooks {
  /** The simulator's host key, an OpenSSH private key. */
  hostKey: string;
  account(user: string): SshAccount | undefined;
  /** Whether connections accepted now get no SSH banner at all. */
  silent(): boolean;
  exec(user: string, command: string, stdin: StdinSource): Promise<ExecOutcome>;
  /** After a command asked for it, once its connection is gone. */
  power(action: 'reboot' | 'poweroff'): void;
}

type ParsedKey = ssh2.ParsedKey;

/** A host key for the simulator's guests: ed25519, the private half in OpenSSH format. */
export function makeHostKey(): { privateKey: string; publicKey: string } {
  // node:crypto exports ed25519 keys as PKCS#8, which ssh2 does not read; its own generator writes OpenSSH.
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'vmplane-proxmox-sim' });
  return { privateKey: pair.private, publicKey: pair.public };
}

function parseKeys(lines: string[]): ParsedKey[] {
  const out: ParsedKey[] = [];
  for (const line of lines) {
    const k = ssh2.utils.parseKey(line);
    if (!(k instanceof Error)) out.push(k);
  }
  return out;
}

export class GuestSshServer {
  readonly host: string;
  #port = 0;
  readonly #hooks: SshGuestHooks;
  readonly #tcp: net.Server;
  readonly #ssh: ssh2.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(host: string, hooks: SshGuestHooks) {
    this.host = host;
    this.#hooks = hooks;
    this.#ssh = new ssh2.Server({ hostKeys: [hooks.hostKey], ident: 'OpenSSH_9.2p1 Debian-2+deb12u3' }, (client) =>
      this.#serve(client),
    );
    this.#tcp = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
      if (this.#hooks.silent()) return;
      this.#ssh.injectSocket(socket);
    });
  }

  /** Listens on `host:port` (0: an ephemeral port); rejects when the address cannot be bound. */
  static async start(host: string, port: number, hooks: SshGuestHooks): Promise<GuestSshServer> {
    const server = new GuestSshServer(host, hooks);
    await new Promise<void>((resolve, reject) => {
      server.#tcp.once('error', reject);
      server.#tcp.listen(port, host, () => {
        server.#tcp.off('error', reject);
        resolve();
      });
    });
    server.#port = (server.#tcp.address() as net.AddressInfo).port;
    return server;
  }

  get port(): number {
    return this.#port;
  }

  /** Stops listening and drops every connection, as a guest that goes down does. */
  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    return new Promise((resolve) => this.#tcp.close(() => resolve()));
  }

  #serve(client: ssh2.Connection): void {
    let user = '';
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      const account = this.#hooks.account(ctx.username);
      const methods: Array<'publickey' | 'password'> = ['publickey', 'password'];
      if (
        ctx.method === 'password' &&
        account?.password !== undefined &&
        checkPassword(ctx.password, account.password)
      ) {
        user = ctx.username;
        ctx.accept();
        return;
      }
      if (ctx.method === 'publickey' && account) {
        const key = parseKeys(account.keys).find(
          (k) =>
            k.type === ctx.key.algo.replace(/^rsa-sha2-(256|512)$/, 'ssh-rsa') && k.getPublicSSH().equals(ctx.key.data),
        );
        // Without a signature the client only asks whether the key would do.
        if (
          key &&
          (ctx.signature === undefined || key.verify(ctx.blob ?? Buffer.alloc(0), ctx.signature, ctx.hashAlgo))
        ) {
          user = ctx.username;
          ctx.accept();
          return;
        }
      }
      ctx.reject(methods);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('pty', (accept) => accept?.());
        session.on('env', (accept) => accept?.());
        session.on('shell', (_accept, reject) => reject?.());
        session.on('exec', (accept, _reject, info) => this.#exec(client, user, info.command, accept()));
      });
    });
  }

  #exec(client: ssh2.Connection, user: string, command: string, channel: ssh2.ServerChannel): void {
    // A write after the client went away must not become an unhandled 'error'.
    channel.on('error', () => {});
    const chunks: Buffer[] = [];
    let ended = false;
    let markEnded: (text: string) => void = () => {};
    const all = new Promise<string>((resolve) => {
      markEnded = resolve;
    });
    const end = () => {
      if (ended) return;
      ended = true;
      markEnded(Buffer.concat(chunks).toString('utf8'));
    };
    channel.on('data', (c: Buffer) => chunks.push(c));
    channel.on('end', end);
    channel.on('close', end);
    const stdin: StdinSource = { all, now: () => (ended ? Buffer.concat(chunks).toString('utf8') : undefined) };
    this.#hooks.exec(user, command, stdin).then(
      (outcome) => {
        if (outcome === 'hang') return;
        if (outcome.stdout !== '') channel.write(outcome.stdout);
        if (outcome.stderr !== '') channel.stderr.write(outcome.stderr);
        if (outcome.action) {
          // The guest goes down under the command: the connection drops without an exit status.
          const action = outcome.action;
          setImmediate(() => {
            client.end();
            this.#hooks.power(action);
          });
          return;
        }
        channel.exit(outcome.exitcode);
        channel.end();
      },
      (e: unknown) => {
        channel.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
        channel.exit(1);
        channel.end();
      },
    );
  }
}
