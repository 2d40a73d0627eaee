/**
 * Reading the official PVE API documentation (`apidoc.json`, or the `apidoc.js` every PVE node
 * serves from pve-docs) and reducing it to the interface's structure: paths, methods, parameters
 * and return types, without any documentation text. The simulator loads what this produces, and
 * tools/gen-pve-schema.ts writes it to schema/pve-api.json, so both read the apidoc the same way.
 */

/** A parameter or return schema as the simulator reads it (PVE's JSON-schema dialect). */
export interface PveJsonSchema {
  type?: string;
  format?: string | Record<string, PveJsonSchema>;
  optional?: number;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  maxLength?: number;
  minLength?: number;
  default?: unknown;
  default_key?: number;
  alias?: string;
  keyAlias?: string;
  requires?: string;
  items?: PveJsonSchema;
  properties?: Record<string, PveJsonSchema>;
  additionalProperties?: number | PveJsonSchema;
  oneOf?: PveJsonSchema[];
  'type-property'?: string;
  'instance-types'?: string[];
  links?: Array<{ rel?: string; href?: string }>;
  /** For numbered parameters (`net[n]`): the highest index, where the apidoc states it. */
  indexMax?: number;
}

export interface PvePermissions {
  /** `world` (no login), `all` (any logged-in user), or absent. */
  user?: string;
  /** PVE's permission expression, e.g. `["perm", "/vms/{vmid}", ["VM.PowerMgmt"]]`. */
  check?: unknown;
}

/** One operation of the reduced schema (the method is the key it is stored under). */
export interface PveApiOperation {
  name: string;
  allowtoken?: number;
  protected?: number;
  proxyto?: string;
  permissions?: PvePermissions;
  parameters: PveJsonSchema;
  returns: PveJsonSchema;
}

/** The reduced schema: what schema/pve-api.json holds. */
export interface PveApiSchema {
  schema: typeof SCHEMA_FORMAT;
  /** The PVE release the apidoc documents. */
  pveVersion: string;
  /** Where the apidoc came from. */
  source: string;
  /** The licence of the source the structure was extracted from. */
  license: string;
  /** Every path template in the apidoc's order, with its operations keyed by HTTP method. */
  paths: Record<string, Record<string, PveApiOperation>>;
}

export const SCHEMA_FORMAT = 'vmplane-pve-api/1';

/** Whether a (reduced) schema is optional; the reduction normalises the flag to 1 or absent. */
export function isOptional(schema: PveJsonSchema): boolean {
  return schema.optional === 1;
}
export const APIDOC_SOURCE = 'proxmox/pve-docs api-viewer/apidata.js';
export const APIDOC_LICENSE = 'AGPL-3.0-or-later';

/** A node of the raw apidoc tree, as far as the reduction reads it. */
interface RawNode {
  path?: unknown;
  children?: unknown;
  info?: unknown;
}

type RawObject = Record<string, unknown>;

const isObject = (v: unknown): v is RawObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The array literal assigned to `apiSchema` in pve-docs' `apidoc.js`, parsed as JSON. The file is
 * JavaScript, so it is scanned rather than evaluated: from the `[` after `apiSchema =` to its
 * matching `]`, skipping brackets inside JSON strings.
 */
export function extractApiSchemaArray(js: string): unknown[] {
  const decl = /\bapiSchema\s*=\s*\[/.exec(js);
  if (!decl) throw new Error('no `apiSchema = [` in the file: not a pve-docs apidoc.js');
  const start = decl.index + decl[0].length - 1;
  let depth = 0;
  let inString = false;
  for (let i = start; i < js.length; i++) {
    const c = js.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) depth++;
    else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
      if (depth === 0) {
        const parsed: unknown = JSON.parse(js.slice(start, i + 1));
        if (!Array.isArray(parsed)) throw new Error('apiSchema is not an array');
        return parsed;
      }
    }
  }
  throw new Error('apiSchema array is not closed: the file is truncated');
}

/**
 * Parses the text of a schema file in any of the three forms: the reduced schema (a JSON object
 * with `schema: "vmplane-pve-api/1"`), an `apidoc.json` array, or an `apidoc.js` script.
 */
export function parseSchemaText(text: string, meta: { pveVersion?: string } = {}): PveApiSchema {
  const head = text.trimStart();
  if (head.startsWith('{')) {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed) || parsed.schema !== SCHEMA_FORMAT || !isObject(parsed.paths))
      throw new Error(`not a reduced PVE schema (expected "schema": "${SCHEMA_FORMAT}")`);
    return parsed as unknown as PveApiSchema;
  }
  const nodes = head.startsWith('[') ? (JSON.parse(text) as unknown) : extractApiSchemaArray(text);
  if (!Array.isArray(nodes)) throw new Error('the apidoc is not an array of path nodes');
  return reduceApidoc(nodes, meta);
}

/** Reduces the apidoc tree to the interface's structure (see PveApiSchema). */
export function reduceApidoc(nodes: unknown[], meta: { pveVersion?: string } = {}): PveApiSchema {
  const paths: PveApiSchema['paths'] = {};
  const walk = (node: RawNode): void => {
    if (typeof node.path !== 'string') throw new Error('an apidoc node without a path');
    if (paths[node.path]) throw new Error(`duplicate path ${node.path} in the apidoc`);
    const methods: Record<string, PveApiOperation> = {};
    if (isObject(node.info)) {
      for (const [method, op] of Object.entries(node.info)) {
        if (isObject(op)) methods[method.toUpperCase()] = reduceOperation(op);
      }
    }
    paths[node.path] = methods;
    if (Array.isArray(node.children)) for (const child of node.children) if (isObject(child)) walk(child);
  };
  for (const node of nodes) if (isObject(node)) walk(node);
  if (Object.keys(paths).length === 0) throw new Error('the apidoc has no paths');
  return {
    schema: SCHEMA_FORMAT,
    pveVersion: meta.pveVersion ?? 'unknown',
    source: APIDOC_SOURCE,
    license: APIDOC_LICENSE,
    paths,
  };
}

function reduceOperation(op: RawObject): PveApiOperation {
  const out: PveApiOperation = {
    name: typeof op.name === 'string' ? op.name : '',
    parameters: reduceSchema(isObject(op.parameters) ? op.parameters : {}),
    returns: reduceSchema(isObject(op.returns) ? op.returns : {}),
  };
  const allowtoken = flag(op.allowtoken);
  if (allowtoken !== undefined) out.allowtoken = allowtoken;
  const prot = flag(op.protected);
  if (prot !== undefined) out.protected = prot;
  if (typeof op.proxyto === 'string') out.proxyto = op.proxyto;
  if (isObject(op.permissions)) {
    const perms: PvePermissions = {};
    if (op.permissions.check !== undefined) perms.check = op.permissions.check;
    if (typeof op.permissions.user === 'string') perms.user = op.permissions.user;
    if (Object.keys(perms).length > 0) out.permissions = perms;
  }
  return sortKeys(out);
}

const flag = (v: unknown): number | undefined => {
  if (v === undefined || v === null) return undefined;
  return v === true || v === 1 || v === '1' ? 1 : 0;
};

const numeric = (v: unknown): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
};

/** Numbers the apidoc states for a numbered parameter's index, in its description. */
function indexMaxOf(name: string, description: unknown): number | undefined {
  const m = /^(.+)\[n\]$/.exec(name);
  if (!m || typeof description !== 'string') return undefined;
  const prefix = (m[1] as string).replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  const found: number[] = [];
  for (const re of [
    /n is 0 to (\d+)/g,
    /n can be up to (\d+)/g,
    new RegExp(`\\b${prefix}0\\.\\.${prefix}(\\d+)\\b`, 'g'),
  ]) {
    for (const hit of description.matchAll(re)) found.push(Number(hit[1]));
  }
  return found.length > 0 ? Math.max(...found) : undefined;
}

/**
 * One schema without its documentation: description, verbose_description, typetext,
 * format_description, title, renderer and the like are dropped; what validation and answers
 * depend on is kept. Numbers written as strings become numbers, and flags 1 or absent.
 */
export function reduceSchema(raw: RawObject, name = ''): PveJsonSchema {
  const out: PveJsonSchema = {};
  if (typeof raw.type === 'string') out.type = raw.type;
  if (typeof raw.format === 'string') out.format = raw.format;
  else if (isObject(raw.format)) out.format = reduceProperties(raw.format);
  const optional = flag(raw.optional);
  if (optional === 1) out.optional = 1;
  if (Array.isArray(raw.enum)) out.enum = raw.enum.map(String);
  const minimum = numeric(raw.minimum);
  if (minimum !== undefined) out.minimum = minimum;
  const maximum = numeric(raw.maximum);
  if (maximum !== undefined) out.maximum = maximum;
  if (typeof raw.pattern === 'string') out.pattern = raw.pattern;
  const maxLength = numeric(raw.maxLength);
  if (maxLength !== undefined) out.maxLength = maxLength;
  const minLength = numeric(raw.minLength);
  if (minLength !== undefined) out.minLength = minLength;
  if (raw.default !== undefined) out.default = raw.default;
  if (flag(raw.default_key) === 1) out.default_key = 1;
  if (typeof raw.alias === 'string') out.alias = raw.alias;
  if (typeof raw.keyAlias === 'string') out.keyAlias = raw.keyAlias;
  if (typeof raw.requires === 'string') out.requires = raw.requires;
  if (isObject(raw.items)) out.items = reduceSchema(raw.items);
  if (isObject(raw.properties)) out.properties = reduceProperties(raw.properties);
  if (isObject(raw.additionalProperties)) out.additionalProperties = reduceSchema(raw.additionalProperties);
  else {
    const ap = flag(raw.additionalProperties);
    if (ap !== undefined) out.additionalProperties = ap;
  }
  if (Array.isArray(raw.oneOf)) out.oneOf = raw.oneOf.filter(isObject).map((s) => reduceSchema(s));
  if (typeof raw['type-property'] === 'string') out['type-property'] = raw['type-property'];
  if (Array.isArray(raw['instance-types'])) out['instance-types'] = raw['instance-types'].map(String);
  if (Array.isArray(raw.links)) {
    out.links = raw.links.filter(isObject).map((l) => {
      const link: { rel?: string; href?: string } = {};
      if (typeof l.href === 'string') link.href = l.href;
      if (typeof l.rel === 'string') link.rel = l.rel;
      return link;
    });
  }
  const indexMax = indexMaxOf(name, raw.description);
  if (indexMax !== undefined) out.indexMax = indexMax;
  return sortKeys(out);
}

function reduceProperties(raw: RawObject): Record<string, PveJsonSchema> {
  const out: Record<string, PveJsonSchema> = {};
  for (const key of Object.keys(raw).sort()) {
    const sub = raw[key];
    if (isObject(sub)) out[key] = reduceSchema(sub, key);
  }
  return out;
}

function sortKeys<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o).sort()) out[key] = (o as Record<string, unknown>)[key];
  return out as T;
}

/** The reduced schema as the text written to schema/pve-api.json: minified, one path per line. */
export function serializeSchema(schema: PveApiSchema): string {
  const { paths, ...header } = schema;
  const lines = Object.entries(paths).map(([path, methods]) => `${JSON.stringify(path)}:${JSON.stringify(methods)}`);
  const head = JSON.stringify(header).slice(0, -1);
  return `${head},"paths":{\n${lines.join(',\n')}\n}}\n`;
}
