import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Auth, newTokenSecret, type SimUser } from './auth.js';
import { type Clock, SimClock } from './clock.js';
import { attachConsoles } from './console.js';
import type { AgentScript, SimEnv } from './context.js';
import { Faults } from './faults.js';
import { type GuestExecScript, GuestRuntime, type GuestSshAddress } from './guest-runtime.js';
import { makeHostKey } from './guest-ssh.js';
import type { RemoteDownloads } from './handlers/download.js';
import { rebootGuest, stopGuest } from './handlers/guest-model.js';
import { handlers } from './handlers/index.js';
import { authenticateRequest, RequestPipeline } from './http/pipeline.js';
import { RequestLog, type Violation } from './http/request-log.js';
import { sendError } from './http/wire.js';
import { findPveSchema, loadSchemaIndex, type SchemaIndex } from './schema.js';
import { type GuestSpec, seedState } from './seed.js';
import { SimState, type Task } from './state.js';
import { makeCert } from './tls.js';

export { type ParamType, type RequestEntry, RequestLog, type Violation } from './http/request-log.js';

export interface SimulatorOptions {
  /**
   * Another PVE version's schema: an `apidoc.json`, an `apidoc.js` (as PVE nodes serve it) or a
   * reduced `pve-api.json`. Wins over `$VMPLANE_PVE_SCHEMA`; the shipped PVE 9.1.3 schema otherwise.
   */
  schemaPath?: string;
  /** Number of nodes (named pve1..pveN) or their names / `{ name, online }`. Default 3. */
  nodes?: number | Array<string | { name: string; online?: boolean }>;
  /** Number of guests spread over the nodes (every fifth an LXC container), or explicit specs. Default 6. */
  guests?: number | GuestSpec[];
  /** Serve HTTPS with a self-signed certificate made at start. */
  tls?: boolean;
  /** Users besides `root@pam` (whose password is `rootPassword`). */
  users?: SimUser[];
  /** Password of `root@pam`. Default `vmplane`. */
  rootPassword?: string;
  /** Secret of the `root@pam!vmplane` API token. Default: a random UUID. */
  tokenSecret?: string;
  /** The clock tickets and tasks follow; a SimClock can be advanced. */
  clock?: SimClock | Clock;
  port?: number;
  host?: string;
  /** How long tasks run before they end, in ms (or per task type). Default 100. */
  taskDuration?: number | ((type: string) => number);
  /** Initial injected latency, ms. */
  latency?: number;
  /** Seed for probabilistic faults. */
  seed?: number;
  /** Scripted answers of the QEMU guest agent's exec. */
  agent?: AgentScript;
  /**
   * How long a VM with a cloud-init drive takes to boot after a start or reboot, in ms of the
   * simulator's clock (advancing `sim.clock` boots it at once). Until then its agent does not
   * answer and it serves no SSH. Default 200.
   */
  bootDelayMs?: number;
  /** The port booted guests serve SSH on, at their `ipconfig0` address; 0 picks one per boot. Default 2222. */
  guestSshPort?: number;
  /** Scripted answers to commands run in guests over SSH (before the built-in shell). */
  guestExec?: GuestExecScript;
  /**
   * What `download-url` does with a URL that is not on loopback (127.0.0.0/8, ::1, localhost):
   * `placeholder` (default) fetches nothing and adds a 512 MiB file with no contents, `fail` ends
   * the task as wget does without a network, `fetch` fetches it. Loopback URLs are always fetched.
   */
  remoteDownloads?: RemoteDownloads;
  /** The largest file `download-url` fetches, in bytes. Default 1 GiB. */
  maxDownloadBytes?: number;
}

export interface SimulatorCredentials {
  username: string;
  password: string;
  /** `root@pam!vmplane` */
  tokenId: string;
  tokenSecret: string;
  /** The full Authorization header value for the token. */
  tokenHeader: string;
}

export interface Simulator {
  /** `http(s)://host:port` (clients append `/api2/json`). */
  url: string;
  /** `url` + `/api2/json`. */
  apiUrl: string;
  host: string;
  port: number;
  credentials: SimulatorCredentials;
  /** PEM of the self-signed certificate (tls only). */
  cert: string | undefined;
  /** SHA-256 fingerprint `AA:BB:...` of the certificate (tls only). */
  fingerprint: string | undefined;
  clock: SimClock;
  state: SimState;
  faults: Faults;
  /**
   * Every request that failed schema validation (or hit an unknown path/method): parameter names
   * and types, and PVE's messages with the values replaced; never the values themselves.
   */
  violations: Violation[];
  requests: RequestLog;
  schema: SchemaIndex;
  /** `METHOD /template` of every operation with a real model (the rest answer schema-shaped data). */
  modelledPaths(): string[];
  addUser(user: SimUser): void;
  /**
   * Makes the guest OS of a QEMU VM run its guest agent or not (`state.guests.get(vmid).agentRunning`);
   * an agent call on a running VM without one fails with 500 'QEMU guest agent is not running'.
   */
  setAgentRunning(vmid: number, running: boolean): void;
  /**
   * Where a booted guest serves SSH (`ipconfig0`'s address, `guestSshPort`), or undefined while it
   * does not: stopped, booting, SSH off, or an address outside 127.0.0.0/8.
   */
  guestSsh(vmid: number): GuestSshAddress | undefined;
  /**
   * Resolves with the address once the guest serves SSH (the VM must be running, or starting);
   * rejects when the VM stops or is destroyed first, or after `timeout` ms (default 10 000).
   */
  waitForGuestSsh(vmid: number, options?: { timeout?: number }): Promise<GuestSshAddress>;
  /** The guests' SSH host key, an OpenSSH public key line (`ssh-ed25519 AAAA... vmplane-proxmox-sim`). */
  guestHostKey: string;
  /** Closes the API server, every guest's SSH server and every download in progress. */
  close(): Promise<void>;
}

/** A copy of a caller's user with only the fields the simulator reads (the caller keeps its object). */
function pickUser(u: SimUser): SimUser {
  return {
    userid: u.userid,
    password: u.password,
    role: u.role,
    tfa: u.tfa ? { totp: u.tfa.totp } : undefined,
    tokens: u.tokens?.map((t) => ({ id: t.id, secret: t.secret, privsep: t.privsep })),
    enabled: u.enabled,
  };
}

/** Starts a simulator on an ephemeral port (unless `port` is given). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const schema = loadSchemaIndex(findPveSchema({ schemaPath: options.schemaPath }));
  const clock = options.clock instanceof SimClock ? options.clock : new SimClock(options.clock ?? Date.now);
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const state: SimState = new SimState({
    clock,
    taskDuration: options.taskDuration ?? 100,
    onTaskScheduled: (_task: Task, delay: number) => {
      if (closed || delay <= 0) return;
      const t = setTimeout(() => {
        timers.delete(t);
        state.tick();
      }, delay + 2);
      timers.add(t);
    },
  });
  const unsubscribe = clock.onAdvance(() => state.tick());
  const password = options.rootPassword ?? 'vmplane';
  const tokenSecret = options.tokenSecret ?? newTokenSecret();
  const root: SimUser = {
    userid: 'root@pam',
    password,
    role: 'Administrator',
    tokens: [{ id: 'vmplane', secret: tokenSecret }],
  };
  const auth = new Auth(clock, [root, ...(options.users ?? []).map(pickUser)]);
  seedState(state, { nodes: options.nodes ?? 3, guests: options.guests ?? 6 });

  const host = options.host ?? '127.0.0.1';
  const tlsMaterial = options.tls ? await makeCert(host) : undefined;
  const fingerprint = tlsMaterial ? new X509Certificate(tlsMaterial.cert).fingerprint256 : undefined;
  let runtime: GuestRuntime | undefined;
  const faults = new Faults(
    {
      expireTickets: () => auth.rotateSecret(),
      setNodeOnline: (node, online) => {
        state.node(node).online = online;
      },
      failTask: (type, message, times) => {
        const list = state.taskFailures.get(type) ?? [];
        for (let i = 0; i < times; i++) list.push(message);
        state.taskFailures.set(type, list);
      },
      guestFaultsChanged: (vmid) => runtime?.refresh(vmid),
    },
    options.seed ?? 1,
  );
  const env: SimEnv = {
    state,
    auth,
    clock,
    agent: options.agent,
    certFingerprint: fingerprint,
    certPem: tlsMaterial?.cert,
    downloads: { remote: options.remoteDownloads ?? 'placeholder', maxBytes: options.maxDownloadBytes ?? 1024 ** 3 },
    faults,
  };
  const hostKey = makeHostKey();
  runtime = new GuestRuntime({
    state,
    clock,
    faults,
    bootDelayMs: options.bootDelayMs ?? 200,
    sshPort: options.guestSshPort ?? 2222,
    hostKey: hostKey.privateKey,
    exec: options.guestExec,
    power: (g, action) => {
      if (g.status !== 'running') return;
      if (action === 'reboot') rebootGuest(state, g);
      else stopGuest(state, g);
    },
  });
  const guests = runtime;
  faults.latency = options.latency ?? 0;
  const violations: Violation[] = [];
  const requests = new RequestLog();
  const pipeline = new RequestPipeline({ schema, state, auth, clock, faults, env, handlers, requests, violations });

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    pipeline.run(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, String(e), false);
    });
  };
  const server = tlsMaterial
    ? https.createServer({ key: tlsMaterial.key, cert: tlsMaterial.cert }, listener)
    : http.createServer(listener);
  server.keepAliveTimeout = 30_000;
  const consoles = attachConsoles(server, env, (req) => authenticateRequest(auth, req));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${tlsMaterial ? 'https' : 'http'}://${urlHost}:${port}`;

  return {
    url,
    apiUrl: `${url}/api2/json`,
    host,
    port,
    credentials: {
      username: 'root@pam',
      password,
      tokenId: 'root@pam!vmplane',
      tokenSecret,
      tokenHeader: `PVEAPIToken=root@pam!vmplane=${tokenSecret}`,
    },
    cert: tlsMaterial?.cert,
    fingerprint,
    clock,
    state,
    faults,
    violations,
    requests,
    schema,
    modelledPaths: () =>
      [...handlers.keys()].sort((a, b) => a.split(' ')[1]!.localeCompare(b.split(' ')[1]!) || a.localeCompare(b)),
    addUser: (user: SimUser) => {
      auth.users.set(user.userid, pickUser(user));
    },
    setAgentRunning: (vmid: number, running: boolean) => {
      const g = state.guests.get(vmid);
      if (g?.type !== 'qemu') throw new Error(`setAgentRunning: no QEMU VM ${vmid}`);
      g.agentRunning = running;
    },
    guestSsh: (vmid: number) => guests.ssh(vmid),
    waitForGuestSsh: (vmid: number, opts: { timeout?: number } = {}) => guests.waitForSsh(vmid, opts.timeout ?? 10_000),
    guestHostKey: hostKey.publicKey,
    close: async () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      state.abortWork();
      await guests.close();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      consoles.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
