import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type PveApiOperation, type PveApiSchema, parseSchemaText } from './apidoc.js';
import { FormatRegistry } from './formats/index.js';
import { Validator } from './validate.js';

export {
  isOptional,
  type PveApiOperation,
  type PveApiSchema,
  type PveJsonSchema,
  type PvePermissions,
} from './apidoc.js';

/** An operation of the schema, with the HTTP method it is served under. */
export interface PveOperation extends PveApiOperation {
  method: string;
}

/**
 * The PVE API structure shipped with this package (PVE 9.1.3, extracted from the official apidoc by
 * tools/gen-pve-schema.ts). Resolved next to the module, so it is found from src/, from dist/ and
 * from an installed package alike.
 */
export const SHIPPED_SCHEMA: string = fileURLToPath(new URL('../schema/pve-api.json', import.meta.url));

export interface FindSchemaOptions {
  /** An `apidoc.json`, an `apidoc.js` or a reduced `pve-api.json`. */
  schemaPath?: string | undefined;
}

/**
 * Which schema file the simulator reads: `options.schemaPath`, else `$VMPLANE_PVE_SCHEMA`, else the
 * shipped one. A path that is given but does not exist is an error, never a silent fallback.
 */
export function findPveSchema(options: FindSchemaOptions = {}): string {
  const explicit = options.schemaPath;
  if (explicit !== undefined && explicit !== '') {
    if (!existsSync(explicit)) throw new Error(`PVE schema not found at ${explicit} (schemaPath)`);
    return explicit;
  }
  const fromEnv = process.env.VMPLANE_PVE_SCHEMA;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!existsSync(fromEnv)) throw new Error(`PVE schema not found at ${fromEnv} ($VMPLANE_PVE_SCHEMA)`);
    return fromEnv;
  }
  if (!existsSync(SHIPPED_SCHEMA)) throw new Error(`the shipped PVE schema is missing: ${SHIPPED_SCHEMA}`);
  return SHIPPED_SCHEMA;
}

export interface Route {
  template: string;
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
  /** The PVE release the schema describes (`unknown` for an apidoc read directly). */
  readonly pveVersion: string;
  /** Validates requests against this schema, with its own named formats. */
  readonly validator: Validator;
  private readonly root = newTrie();

  constructor(readonly api: PveApiSchema) {
    this.pveVersion = api.pveVersion;
    this.validator = new Validator(new FormatRegistry(api));
    let ops = 0;
    for (const [template, byMethod] of Object.entries(api.paths)) {
      const methods = new Map<string, PveOperation>();
      for (const [method, op] of Object.entries(byMethod)) methods.set(method, { ...op, method });
      ops += methods.size;
      const segments = template.split('/').filter((s) => s.length > 0);
      const route: Route = {
        template,
        paramNames: segments.filter((s) => s.startsWith('{')).map((s) => s.slice(1, -1)),
        methods,
        subdirs: [],
      };
      this.routes.set(template, route);
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
    }
    // Directory answers list children in the apidoc's order, whatever order the parents came in.
    for (const route of this.routes.values()) {
      const cut = route.template.lastIndexOf('/');
      const parent = cut > 0 ? this.routes.get(route.template.slice(0, cut)) : undefined;
      parent?.subdirs.push(route.template.slice(cut + 1));
    }
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

/** Reads and indexes a schema file of any accepted form (cached per file for the life of the process). */
export function loadSchemaIndex(path: string = findPveSchema()): SchemaIndex {
  const hit = cache.get(path);
  if (hit) return hit;
  const index = new SchemaIndex(readPveSchema(path));
  cache.set(path, index);
  return index;
}

/** Reads a schema file: the reduced `pve-api.json`, an `apidoc.json` array or an `apidoc.js`. */
export function readPveSchema(path: string): PveApiSchema {
  try {
    return parseSchemaText(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read the PVE schema ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
