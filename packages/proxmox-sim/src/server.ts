import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { type AddressInfo, isIP } from 'node:net';
import { generate as generateCertificate } from 'selfsigned';
import { Auth, AuthError, type AuthInfo, newTokenSecret, type SimUser } from './auth.js';
import { type Clock, SimClock } from './clock.js';
import { attachConsoles } from './console.js';
import { type AgentScript, Ctx, Envelope, type Handler, type SimEnv, type UploadedFile } from './context.js';
import { Faults } from './faults.js';
import { handlers } from './handlers/index.js';
import { fillRequired, generateFromSchema } from './returns.js';
import { findPveSchema, loadSchemaIndex, type PveOperation, type Route, type SchemaIndex } from './schema.js';
import { type GuestSpec, seedState } from './seed.js';
import { PveError, SimState, type Task } from './state.js';
import { validateParams } from './validate.js';

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
}

export interface Violation {
  method: string;
  path: string;
  template: string | undefined;
  errors: Record<string, string>;
  params: Record<string, unknown>;
}

export interface RequestEntry {
  method: string;
  path: string;
  template: string | undefined;
  status: number;
  /** Media type of the request body (`application/json`, no parameters); absent without one. */
  contentType?: string;
  /**
   * Names of the parameters the request carried in its query string and body (sorted; path
   * parameters left out). Never their values. Absent when the request failed before parsing.
   */
  params?: string[];
  /** Simulator clock time (ms) at which the request arrived. */
  at?: number;
}

/** Counts of requests, per `METHOD /template`, plus the last entries. */
export class RequestLog {
  total = 0;
  readonly byRoute = new Map<string, number>();
  readonly entries: RequestEntry[] = [];
  private readonly keep = 10_000;

  /** @internal */
  record(e: RequestEntry): void {
    this.total++;
    const key = `${e.method} ${e.template ?? e.path}`;
    this.byRoute.set(key, (this.byRoute.get(key) ?? 0) + 1);
    this.entries.push(e);
    if (this.entries.length > this.keep) this.entries.splice(0, this.entries.length - this.keep);
  }

  /** Requests seen, optionally only for one method and/or path template (`/nodes/{node}/qemu`). */
  count(method?: string, template?: string): number {
    if (method === undefined && template === undefined) return this.total;
    let n = 0;
    for (const [key, c] of this.byRoute) {
      const [m, t] = key.split(' ', 2);
      if ((method === undefined || m === method.toUpperCase()) && (template === undefined || t === template)) n += c;
    }
    return n;
  }

  reset(): void {
    this.total = 0;
    this.byRoute.clear();
    this.entries.length = 0;
  }
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
  /** Every request that failed schema validation (or hit an unknown path/method). */
  violations: Violation[];
  requests: RequestLog;
  schema: SchemaIndex;
  /** `METHOD /template` of every operation with a real model (the rest answer schema-shaped data). */
  modelledPaths(): string[];
  addUser(user: SimUser): void;
  close(): Promise<void>;
}

const JSON_HEADERS = {
  'Content-Type': 'application/json;charset=UTF-8',
  Server: 'pve-api-daemon/3.0',
  'Cache-Control': 'max-age=0',
  Pragma: 'no-cache',
  Expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
};

function reason(message: string): string {
  // The status line carries the first line of the message, in latin-1 safe characters.
  return (message.split('\n')[0] ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 200) || 'Error';
}

/** A self-signed certificate for the simulator's host, made in-process (no `openssl` binary needed). */
async function makeCert(host: string): Promise<{ key: string; cert: string }> {
  const altNames: Array<{ type: 2; value: string } | { type: 7; ip: string }> = [
    isIP(host) ? { type: 7, ip: host } : { type: 2, value: host },
  ];
  if (host !== 'localhost') altNames.push({ type: 2, value: 'localhost' });
  if (host !== '127.0.0.1') altNames.push({ type: 7, ip: '127.0.0.1' });
  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate.getTime() + 3650 * 86_400_000);
  const pems = await generateCertificate(
    [
      { name: 'commonName', value: 'pve-sim' },
      { name: 'organizationName', value: 'vmplane proxmox-sim' },
    ],
    {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames },
      ],
    },
  );
  return { key: pems.private, cert: pems.cert };
}

function addParam(target: Record<string, unknown>, key: string, value: string): void {
  const prev = target[key];
  if (prev === undefined) target[key] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else target[key] = [prev as string, value];
}

function parseQuery(qs: string, target: Record<string, unknown>): void {
  if (qs === '') return;
  for (const [k, v] of new URLSearchParams(qs)) addParam(target, k, v);
}

function parseMultipart(body: Buffer, boundary: string, target: Record<string, unknown>, files: UploadedFile[]): void {
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    const part = body.subarray(start + 2, next - 2); // skip CRLF after delimiter and before the next
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd >= 0) {
      const headers = part.subarray(0, headerEnd).toString('utf8');
      const data = part.subarray(headerEnd + 4);
      const name = /name="([^"]*)"/i.exec(headers)?.[1];
      const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
      if (name !== undefined) {
        if (filename !== undefined) {
          files.push({ field: name, filename, data });
          addParam(target, name, filename);
        } else addParam(target, name, data.toString('utf8'));
      }
    }
    pos = next;
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new PveError(413, 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function cookieTicket(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === 'PVEAuthCookie') {
      const v = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(v);
      } catch {
        return v;
      }
    }
  }
  return undefined;
}

function permissionPath(op: PveOperation, params: Record<string, string>): string {
  const check = op.permissions?.check;
  if (Array.isArray(check) && check[0] === 'perm' && typeof check[1] === 'string') {
    const privs = Array.isArray(check[2]) ? (check[2] as unknown[]).join(', ') : '';
    const p = check[1].replace(/\{(\w+)\}/g, (_m, k: string) => params[k] ?? k);
    return `${p}, ${privs}`;
  }
  return '/';
}

/** Starts a simulator on an ephemeral port (unless `port` is given). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const schemaPath = findPveSchema({ schemaPath: options.schemaPath });
  const schema = loadSchemaIndex(schemaPath);
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
  const auth = new Auth(clock, [root, ...(options.users ?? [])]);
  seedState(state, {
    nodes: options.nodes ?? 3,
    guests: options.guests ?? 6,
  });

  const host = options.host ?? '127.0.0.1';
  const tlsMaterial = options.tls ? await makeCert(host) : undefined;
  const fingerprint = tlsMaterial ? new X509Certificate(tlsMaterial.cert).fingerprint256 : undefined;
  const env: SimEnv = {
    state,
    auth,
    clock,
    agent: options.agent,
    certFingerprint: fingerprint,
    certPem: tlsMaterial?.cert,
  };
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
    },
    options.seed ?? 1,
  );
  faults.latency = options.latency ?? 0;
  const violations: Violation[] = [];
  const requests = new RequestLog();

  const send = (
    res: http.ServerResponse,
    status: number,
    message: string,
    payload: Record<string, unknown>,
    extjs: boolean,
  ): void => {
    const body = extjs
      ? JSON.stringify({ ...payload, success: status === 200 ? 1 : 0, ...(status === 200 ? {} : { status }) })
      : JSON.stringify(payload);
    res.writeHead(extjs ? 200 : status, reason(message), {
      ...JSON_HEADERS,
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  const sendError = (
    res: http.ServerResponse,
    status: number,
    message: string,
    extjs: boolean,
    errors?: Record<string, string>,
  ) => {
    const payload: Record<string, unknown> = { data: null, message: message.endsWith('\n') ? message : `${message}\n` };
    if (errors) payload.errors = errors;
    send(res, status, message, payload, extjs);
  };

  const authenticate = (req: http.IncomingMessage): AuthInfo => {
    const authz = req.headers.authorization;
    if (authz?.startsWith('PVEAPIToken')) return auth.checkToken(authz);
    const ticket = cookieTicket(req.headers.cookie);
    if (!ticket) throw new AuthError(401, 'No ticket');
    const v = auth.verifyTicket(ticket);
    if (!v) throw new AuthError(401, 'invalid PVE ticket');
    return { userid: v.userid, via: 'ticket', role: auth.roleOf(v.userid) };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q + 1);
    const at = clock.now();
    const ctypeHeader = req.headers['content-type'];
    const contentType = ctypeHeader ? (ctypeHeader.split(';')[0] ?? '').trim().toLowerCase() || undefined : undefined;
    let paramNames: string[] | undefined;
    let extjs = false;
    let apiPath: string;
    if (rawPath.startsWith('/api2/json/') || rawPath === '/api2/json') apiPath = rawPath.slice(10);
    else if (rawPath.startsWith('/api2/extjs/') || rawPath === '/api2/extjs') {
      apiPath = rawPath.slice(11);
      extjs = true;
    } else {
      requests.record({
        method,
        path: rawPath,
        template: undefined,
        status: 404,
        ...(contentType ? { contentType } : {}),
        at,
      });
      sendError(res, 404, 'Not Found', false);
      return;
    }
    let segments: string[];
    try {
      segments = apiPath
        .split('/')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s));
    } catch {
      sendError(res, 400, 'malformed URL', extjs);
      return;
    }
    const path = `/${segments.join('/')}`;
    const match = schema.lookup(segments);
    const template = match?.route.template;
    let status = 200;
    try {
      state.tick();
      if (faults.latency > 0) await new Promise((r) => setTimeout(r, faults.latency));
      const decision = faults.decide(method, path, template ?? path);
      if (decision?.kind === 'drop') {
        status = 0;
        req.socket.destroy();
        return;
      }
      if (decision?.kind === 'fail') throw new PveError(decision.status, decision.message);

      const body =
        method === 'POST' || method === 'PUT' || method === 'DELETE' ? await readBody(req, 256 * 1024 ** 2) : undefined;
      const op = match?.route.methods.get(method);
      if (!match || !op) {
        violations.push({
          method,
          path,
          template,
          errors: { path: match ? `method ${method} not allowed` : 'no such path in the schema' },
          params: {},
        });
        throw new PveError(501, `Method '${method} ${path}' not implemented`);
      }
      // Authentication and CSRF, as PVE does them, before any parameter checks.
      let who: AuthInfo = { userid: '', via: 'none', role: 'PVEAuditor' };
      if (op.permissions?.user !== 'world') {
        who = authenticate(req);
        if (who.via === 'ticket' && method !== 'GET') {
          const csrf = req.headers.csrfpreventiontoken;
          if (!auth.verifyCsrf(Array.isArray(csrf) ? csrf[0] : csrf, who.userid))
            throw new AuthError(401, 'Permission denied - invalid csrf token');
        }
        if (who.via === 'token' && op.allowtoken === 0)
          throw new AuthError(401, 'API tokens are not allowed for this call');
      }
      // Parameters: query string, then the body, then the path.
      const raw: Record<string, unknown> = {};
      const files: UploadedFile[] = [];
      parseQuery(query, raw);
      if (body && body.length > 0) {
        const ctype = String(req.headers['content-type'] ?? '');
        if (ctype.includes('application/json')) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body.toString('utf8'));
          } catch {
            throw new PveError(400, 'malformed JSON string');
          }
          if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(raw, parsed);
        } else if (ctype.includes('multipart/form-data')) {
          const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(ctype);
          parseMultipart(body, (boundary?.[1] ?? boundary?.[2] ?? '').trim(), raw, files);
        } else parseQuery(body.toString('utf8'), raw);
      }
      paramNames = Object.keys(raw).sort();
      Object.assign(raw, match.params);
      const { params, errors } = validateParams(op, raw);
      if (errors) {
        violations.push({ method, path, template, errors, params: raw });
        throw new PveError(400, 'Parameter verification failed.', errors);
      }
      // Requests proxied to a node need that node reachable.
      if (match.route.paramNames.includes('node')) {
        const node = state.node(String(params.node ?? match.params.node));
        if (!node.online) throw new PveError(595, `No route to host`);
      }
      if (
        who.role !== 'Administrator' &&
        method !== 'GET' &&
        op.permissions?.user !== 'world' &&
        op.permissions?.user !== 'all'
      )
        throw new AuthError(403, `Permission check failed (${permissionPath(op, match.params)})`);

      const handler: Handler | undefined = handlers.get(`${method} ${match.route.template}`);
      const ctx = new Ctx(env, method, path, match.route, op, params, who, files);
      let data = handler ? await handler(ctx) : generic(match.route, op);
      let extra: Record<string, unknown> = {};
      if (data instanceof Envelope) {
        extra = data.extra;
        data = data.data;
      }
      fillRequired(data, op.returns);
      send(res, 200, 'OK', { data: data ?? null, ...extra }, extjs);
    } catch (e) {
      if (e instanceof PveError) {
        status = e.status;
        sendError(res, e.status, e.message, extjs, e.errors);
      } else if (e instanceof AuthError) {
        status = e.status;
        sendError(res, e.status, e.message, extjs);
      } else {
        status = 500;
        sendError(res, 500, `internal simulator error: ${e instanceof Error ? e.message : String(e)}`, extjs);
      }
    } finally {
      requests.record({
        method,
        path,
        template,
        status,
        ...(contentType ? { contentType } : {}),
        ...(paramNames ? { params: paramNames } : {}),
        at,
      });
    }
  };

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, String(e), false);
    });
  };
  const server = tlsMaterial
    ? https.createServer({ key: tlsMaterial.key, cert: tlsMaterial.cert }, listener)
    : http.createServer(listener);
  server.keepAliveTimeout = 30_000;
  const consoles = attachConsoles(server, env, authenticate, schema);

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
      auth.users.set(user.userid, user);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      unsubscribe();
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

/** The answer of an operation without a model: a directory index or a schema-shaped value. */
function generic(route: Route, op: PveOperation): unknown {
  const links = op.returns.links;
  const subdirs = route.subdirs.filter((s) => !s.startsWith('{'));
  if (op.method === 'GET' && op.returns.type === 'array' && Array.isArray(links) && subdirs.length > 0) {
    const href = (links[0] as { href?: string } | undefined)?.href ?? '{subdir}';
    const key = /^\{(\w+)\}$/.exec(href)?.[1] ?? 'subdir';
    return subdirs.map((s) => ({ [key]: s }));
  }
  return generateFromSchema(op.returns);
}
