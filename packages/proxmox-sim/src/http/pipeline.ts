/**
 * One API request, as PVE's API server handles it, in named steps: parse the URL, inject faults,
 * route against the schema, authenticate (ticket + CSRF, or token), read the body, gather and
 * validate the parameters, authorize, run the handler, answer. Each step is a small method; `run`
 * only chains them. Like pveproxy, it authenticates from the headers alone: a refused request is
 * answered before its body is read (the rest of the body is then read and discarded, so the
 * connection stays usable; pveproxy closes it instead).
 */
import type * as http from 'node:http';
import { type Auth, AuthError, type AuthInfo } from '../auth.js';
import type { SimClock } from '../clock.js';
import { Ctx, Envelope, type Handler, type SimEnv, type UploadedFile } from '../context.js';
import type { Faults } from '../faults.js';
import { fillRequired, generateFromSchema } from '../returns.js';
import type { PveOperation, Route, RouteMatch, SchemaIndex } from '../schema.js';
import { PveError, type SimState } from '../state.js';
import { validateParams } from '../validate.js';
import { paramTypes, type RequestLog, type Violation } from './request-log.js';
import { cookieTicket, parseBody, parseQuery, readBody, send, sendError } from './wire.js';

const BODY_LIMIT = 256 * 1024 ** 2;
const UPLOAD = '/nodes/{node}/storage/{storage}/upload';

export interface PipelineDeps {
  schema: SchemaIndex;
  state: SimState;
  auth: Auth;
  clock: SimClock;
  faults: Faults;
  env: SimEnv;
  handlers: ReadonlyMap<string, Handler>;
  requests: RequestLog;
  violations: Violation[];
}

/** A request on its way through the steps; each step fills in what it learns. */
interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  method: string;
  /** The path after `/api2/json` (or `/api2/extjs`), decoded segment by segment. */
  path: string;
  segments: string[];
  query: string;
  extjs: boolean;
  at: number;
  contentType: string | undefined;
  status: number;
  body?: Buffer | undefined;
  match: RouteMatch | undefined;
  op?: PveOperation;
  who?: AuthInfo;
  raw?: Record<string, unknown>;
  files?: UploadedFile[];
  paramNames?: string[];
  params?: Record<string, unknown>;
  /** A `failTask` fault: the message the task this request starts ends with. */
  taskFailure?: string;
}

const NOBODY: AuthInfo = { userid: '', via: 'none', role: 'PVEAuditor' };

export class RequestPipeline {
  constructor(private readonly deps: PipelineDeps) {}

  /** The request listener: runs the steps and records the request, whatever happens. */
  async run(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const x = this.parse(req, res);
    if (!x) return;
    try {
      if (!(await this.injectFaults(x))) return;
      this.route(x);
      this.authenticate(x);
      await this.readBody(x);
      this.gatherParameters(x);
      this.validate(x);
      this.authorize(x);
      await this.respond(x);
    } catch (e) {
      this.fail(x, e);
    } finally {
      this.record(x);
    }
  }

  /** Splits the URL; anything outside /api2/json and /api2/extjs is a plain 404. */
  private parse(req: http.IncomingMessage, res: http.ServerResponse): Exchange | undefined {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const header = req.headers['content-type'];
    const contentType = header ? (header.split(';')[0] ?? '').trim().toLowerCase() || undefined : undefined;
    const at = this.deps.clock.now();
    let apiPath: string | undefined;
    let extjs = false;
    if (rawPath.startsWith('/api2/json/') || rawPath === '/api2/json') apiPath = rawPath.slice(10);
    else if (rawPath.startsWith('/api2/extjs/') || rawPath === '/api2/extjs') {
      apiPath = rawPath.slice(11);
      extjs = true;
    }
    if (apiPath === undefined) {
      this.deps.requests.record({
        method,
        path: rawPath,
        template: undefined,
        status: 404,
        ...(contentType ? { contentType } : {}),
        at,
      });
      sendError(res, 404, 'Not Found', false);
      return undefined;
    }
    let segments: string[];
    try {
      segments = apiPath
        .split('/')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s));
    } catch {
      sendError(res, 400, 'malformed URL', extjs);
      return undefined;
    }
    return {
      req,
      res,
      method,
      path: `/${segments.join('/')}`,
      segments,
      query: q < 0 ? '' : rawUrl.slice(q + 1),
      extjs,
      at,
      contentType,
      status: 200,
      match: this.deps.schema.lookup(segments),
    };
  }

  /** Latency, then a matching fault rule: false when the connection was dropped. */
  private async injectFaults(x: Exchange): Promise<boolean> {
    const { state, faults } = this.deps;
    state.tick();
    const template = x.match?.route.template;
    if (faults.latency > 0) {
      faults.noteInjected({ kind: 'latency', method: x.method, path: x.path, ms: faults.latency });
      await new Promise((r) => setTimeout(r, faults.latency));
    }
    const decision = faults.decide(x.method, x.path, template ?? x.path);
    if (decision?.kind === 'drop') {
      x.status = 0;
      x.req.socket.destroy();
      return false;
    }
    if (decision?.kind === 'fail') throw new PveError(decision.status, decision.message);
    if (decision?.kind === 'failTask') x.taskFailure = decision.message;
    return true;
  }

  private async readBody(x: Exchange): Promise<void> {
    if (x.method === 'POST' || x.method === 'PUT' || x.method === 'DELETE') x.body = await readBody(x.req, BODY_LIMIT);
  }

  /** The operation of the schema; an unknown path or method is a violation and answers 501. */
  private route(x: Exchange): void {
    const op = x.match?.route.methods.get(x.method);
    if (!x.match || !op) {
      this.deps.violations.push({
        method: x.method,
        path: x.path,
        template: x.match?.route.template,
        errors: { path: x.match ? `method ${x.method} not allowed` : 'no such path in the schema' },
        params: {},
      });
      throw new PveError(501, `Method '${x.method} ${x.path}' not implemented`);
    }
    x.op = op;
  }

  /**
   * Ticket (with CSRF for writes) or API token, as PVE checks them before any parameter. An upload
   * needs no CSRF token (PVE skips the check, as HTML forms cannot send the header) but its
   * permission is checked here, from the headers, before the file is read.
   */
  private authenticate(x: Exchange): void {
    const op = x.op as PveOperation;
    if (op.permissions?.user === 'world') {
      x.who = NOBODY;
      return;
    }
    const who = authenticateRequest(this.deps.auth, x.req);
    const isUpload = x.method === 'POST' && x.match?.route.template === UPLOAD;
    if (isUpload && who.role !== 'Administrator')
      throw new AuthError(403, `Permission check failed (${permissionPath(op, x.match?.params ?? {})})`);
    if (who.via === 'ticket' && x.method !== 'GET' && !isUpload) {
      const csrf = x.req.headers.csrfpreventiontoken;
      if (!this.deps.auth.verifyCsrf(Array.isArray(csrf) ? csrf[0] : csrf, who.userid))
        throw new AuthError(401, 'Permission denied - invalid csrf token');
    }
    if (who.via === 'token' && op.allowtoken === 0)
      throw new AuthError(401, 'API tokens are not allowed for this call');
    x.who = who;
  }

  /** Parameters from the query string, then the body, then the path. */
  private gatherParameters(x: Exchange): void {
    const raw: Record<string, unknown> = {};
    const files: UploadedFile[] = [];
    parseQuery(x.query, raw);
    if (x.body && x.body.length > 0) parseBody(x.body, String(x.req.headers['content-type'] ?? ''), raw, files);
    x.paramNames = Object.keys(raw).sort();
    Object.assign(raw, x.match?.params);
    x.raw = raw;
    x.files = files;
  }

  private validate(x: Exchange): void {
    const raw = x.raw as Record<string, unknown>;
    const { params, errors, safeErrors } = validateParams(x.op as PveOperation, raw, this.deps.schema.validator);
    if (errors) {
      this.deps.violations.push({
        method: x.method,
        path: x.path,
        template: x.match?.route.template,
        errors: safeErrors ?? {},
        params: paramTypes(raw),
      });
      throw new PveError(400, 'Parameter verification failed.', errors);
    }
    x.params = params;
  }

  /** The node must be reachable; an auditor may only read. */
  private authorize(x: Exchange): void {
    const match = x.match as RouteMatch;
    const op = x.op as PveOperation;
    const who = x.who as AuthInfo;
    if (match.route.paramNames.includes('node')) {
      const node = this.deps.state.node(String(x.params?.node ?? match.params.node));
      if (!node.online) throw new PveError(595, 'No route to host');
    }
    const open = op.permissions?.user === 'world' || op.permissions?.user === 'all';
    if (who.role !== 'Administrator' && x.method !== 'GET' && !open)
      throw new AuthError(403, `Permission check failed (${permissionPath(op, match.params)})`);
  }

  /** The handler's answer (or a schema-shaped one), completed to satisfy the returns schema. */
  private async respond(x: Exchange): Promise<void> {
    const match = x.match as RouteMatch;
    const op = x.op as PveOperation;
    const handler = this.deps.handlers.get(`${x.method} ${match.route.template}`);
    const ctx = new Ctx(
      this.deps.env,
      x.method,
      x.path,
      match.route,
      op,
      x.params ?? {},
      x.who as AuthInfo,
      x.files ?? [],
    );
    // Handlers start their tasks synchronously, so the failure cannot reach another request's task.
    this.deps.state.requestTaskFailure = x.taskFailure;
    let data: unknown;
    try {
      data = handler ? await handler(ctx) : generic(match.route, op);
    } finally {
      this.deps.state.requestTaskFailure = undefined;
    }
    let extra: Record<string, unknown> = {};
    if (data instanceof Envelope) {
      extra = data.extra;
      data = data.data;
    }
    fillRequired(data, op.returns);
    send(x.res, 200, 'OK', { data: data ?? null, ...extra }, x.extjs);
  }

  private fail(x: Exchange, e: unknown): void {
    if (e instanceof PveError) {
      x.status = e.status;
      sendError(x.res, e.status, e.message, x.extjs, e.errors);
    } else if (e instanceof AuthError) {
      x.status = e.status;
      sendError(x.res, e.status, e.message, x.extjs);
    } else {
      x.status = 500;
      sendError(x.res, 500, `internal simulator error: ${e instanceof Error ? e.message : String(e)}`, x.extjs);
    }
  }

  private record(x: Exchange): void {
    this.deps.requests.record({
      method: x.method,
      path: x.path,
      template: x.match?.route.template,
      status: x.status,
      ...(x.contentType ? { contentType: x.contentType } : {}),
      ...(x.paramNames ? { params: x.paramNames } : {}),
      at: x.at,
    });
  }
}

/** Who sent the request: an API token header, or a ticket cookie. */
export function authenticateRequest(auth: Auth, req: http.IncomingMessage): AuthInfo {
  const authz = req.headers.authorization;
  if (authz?.startsWith('PVEAPIToken')) return auth.checkToken(authz);
  const ticket = cookieTicket(req.headers.cookie);
  if (!ticket) throw new AuthError(401, 'No ticket');
  const v = auth.verifyTicket(ticket);
  if (!v) throw new AuthError(401, 'invalid PVE ticket');
  return { userid: v.userid, via: 'ticket', role: auth.roleOf(v.userid) };
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

/** The answer of an operation without a model: a directory index or a schema-shaped value. */
function generic(route: Route, op: PveOperation): unknown {
  const links = op.returns.links;
  const subdirs = route.subdirs.filter((s) => !s.startsWith('{'));
  if (op.method === 'GET' && op.returns.type === 'array' && Array.isArray(links) && subdirs.length > 0) {
    const href = links[0]?.href ?? '{subdir}';
    const key = /^\{(\w+)\}$/.exec(href)?.[1] ?? 'subdir';
    return subdirs.map((s) => ({ [key]: s }));
  }
  return generateFromSchema(op.returns);
}
