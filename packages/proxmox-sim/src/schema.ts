import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shape of the official PVE API schema (`pve-apidoc.json`), as far as the simulator reads it.
 * The schema itself is never copied into this package: it is read from disk at start.
 */
export interface PveJsonSchema {
  type?: string;
  description?: string;
  format?: string | Record<string, PveJsonSchema>;
  optional?: number | string | boolean;
  enum?: string[];
  minimum?: number | string;
  maximum?: number | string;
  pattern?: string;
  maxLength?: number;
  minLength?: number;
  default?: unknown;
  default_key?: number | string;
  alias?: string;
  keyAlias?: string;
  requires?: string;
  items?: PveJsonSchema;
  properties?: Record<string, PveJsonSchema>;
  additionalProperties?: number | boolean | string | PveJsonSchema;
  typetext?: string;
  links?: unknown;
}

export interface PveOperation {
  method: string;
  name: string;
  description?: string;
  allowtoken?: number;
  protected?: number;
  proxyto?: string;
  permissions?: { user?: string; check?: unknown; description?: string };
  parameters: PveJsonSchema;
  returns: PveJsonSchema;
}

export interface PveSchemaNode {
  path: string;
  text: string;
  leaf: number;
  children?: PveSchemaNode[];
  info?: Record<string, PveOperation>;
}

export interface FindSchemaOptions {
  schemaPath?: string | undefined;
  /** Extra starting directories for the upward walk (tests, bins). */
  from?: string[] | undefined;
}

const SCHEMA_RELATIVE = join('shared', 'specs', 'pve-apidoc.json');
const LAST_RESORT = '/work/shared/specs/pve-apidoc.json';

function* ancestors(start: string): Generator<string> {
  let dir = resolve(start);
  for (;;) {
    yield dir;
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/**
 * Where the PVE schema is: `options.schemaPath`, `$VMPLANE_PVE_SCHEMA`, `$VMPLANE_SPECS_DIR`, then
 * `shared/specs/pve-apidoc.json` (or `../shared/specs/...`) in every ancestor of the working
 * directory and of this package, and finally `/work/shared/specs/pve-apidoc.json`.
 */
export function findPveSchema(options: FindSchemaOptions = {}): string {
  const tried: string[] = [];
  const check = (p: string | undefined): string | undefined => {
    if (!p) return undefined;
    tried.push(p);
    return existsSync(p) ? p : undefined;
  };
  const direct =
    check(options.schemaPath) ??
    check(process.env.VMPLANE_PVE_SCHEMA) ??
    (process.env.VMPLANE_SPECS_DIR ? check(join(process.env.VMPLANE_SPECS_DIR, 'pve-apidoc.json')) : undefined);
  if (direct) return direct;
  if (options.schemaPath) throw new Error(`PVE schema not found at ${options.schemaPath}`);
  const here = dirname(fileURLToPath(import.meta.url));
  const starts = [...(options.from ?? []), process.cwd(), here];
  for (const start of starts) {
    for (const dir of ancestors(start)) {
      const found = check(join(dir, SCHEMA_RELATIVE)) ?? check(join(dir, '..', SCHEMA_RELATIVE));
      if (found) return found;
    }
  }
  const last = check(LAST_RESORT);
  if (last) return last;
  throw new Error(
    `PVE schema (pve-apidoc.json) not found; set VMPLANE_PVE_SCHEMA or pass schemaPath. Tried:\n  ${tried.slice(0, 12).join('\n  ')}`,
  );
}

export interface Route {
  template: string;
  node: PveSchemaNode;
  /** Names of the `{param}` segments in order. */
  paramNames: string[];
  methods: Map<string, PveOperation>;
  /** Names of the direct children (for directory index answers). */
  subdirs: string[];
}

interface Trie {
  literal: Map<string, Trie>;
  param: Trie | undefined;
  route: Route | undefined;
}

const newTrie = (): Trie => ({ literal: new Map(), param: undefined, route: undefined });

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

/** The schema indexed once: path templates in a trie, so a lookup is one walk over the segments. */
export class SchemaIndex {
  readonly routes = new Map<string, Route>();
  readonly operationCount: number;
  private readonly root = newTrie();

  constructor(nodes: PveSchemaNode[]) {
    let ops = 0;
    const walk = (node: PveSchemaNode) => {
      const methods = new Map<string, PveOperation>(Object.entries(node.info ?? {}));
      ops += methods.size;
      const segments = node.path.split('/').filter((s) => s.length > 0);
      const route: Route = {
        template: node.path,
        node,
        paramNames: segments.filter((s) => s.startsWith('{')).map((s) => s.slice(1, -1)),
        methods,
        subdirs: (node.children ?? []).map((c) => c.path.split('/').pop() ?? ''),
      };
      this.routes.set(node.path, route);
      let t = this.root;
      for (const seg of segments) {
        if (seg.startsWith('{')) {
          t.param ??= newTrie();
          t = t.param;
        } else {
          let next = t.literal.get(seg);
          if (!next) {
            next = newTrie();
            t.literal.set(seg, next);
          }
          t = next;
        }
      }
      t.route = route;
      for (const child of node.children ?? []) walk(child);
    };
    for (const n of nodes) walk(n);
    this.operationCount = ops;
  }

  /** Resolves a concrete path (already split into decoded segments) to its route. */
  lookup(segments: string[]): RouteMatch | undefined {
    const values: string[] = [];
    const find = (t: Trie, i: number): Route | undefined => {
      if (i === segments.length) return t.route;
      const seg = segments[i] as string;
      const lit = t.literal.get(seg);
      if (lit) {
        const r = find(lit, i + 1);
        if (r) return r;
      }
      if (t.param && seg.length > 0) {
        values.push(seg);
        const r = find(t.param, i + 1);
        if (r) return r;
        values.pop();
      }
      return undefined;
    };
    const route = find(this.root, 0);
    if (!route) return undefined;
    const params: Record<string, string> = {};
    route.paramNames.forEach((name, i) => {
      params[name] = values[i] ?? '';
    });
    return { route, params };
  }
}

const cache = new Map<string, SchemaIndex>();

/** Reads and indexes the schema (cached per file for the life of the process). */
export function loadSchemaIndex(path: string): SchemaIndex {
  const hit = cache.get(path);
  if (hit) return hit;
  const nodes = JSON.parse(readFileSync(path, 'utf8')) as PveSchemaNode[];
  const index = new SchemaIndex(nodes);
  cache.set(path, index);
  return index;
}

export function isOptional(schema: PveJsonSchema): boolean {
  const o = schema.optional;
  return o === 1 || o === '1' || o === true;
}
