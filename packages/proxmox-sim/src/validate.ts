import { isIP } from 'node:net';
import { isOptional, type PveJsonSchema, type PveOperation } from './schema.js';

/** Raised by a checker; the message is PVE's wording where known. */
class Invalid extends Error {}

type Checker = (value: unknown) => unknown;

const MSG_NOT_DEFINED = 'property is not defined in schema and the schema does not allow additional properties';
const MSG_MISSING = 'property is missing and it is not optional';

const num = (v: number | string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
};

// --- named formats -------------------------------------------------------------------------

const reNode = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const reVmid = /^[1-9][0-9]{2,8}$/;
const reStorage = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const reConfigId = /^[a-z][a-z0-9_-]+$/i;
const reRealm = /^[A-Za-z][A-Za-z0-9.\-_]+$/;
const reUserid = /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$/;
const reTokenid = /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/;
const rePool = /^[A-Za-z0-9_][A-Za-z0-9_\-/]*$/;
const reMac = /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i;
const reMacPrefix = /^[a-f0-9][02468ace](?::[a-f0-9]{2}){0,2}:?$/i;
const reDns =
  /^(?=.{1,255}$)([a-zA-Z0-9_]([a-zA-Z0-9\-_]*[a-zA-Z0-9_])?\.)*[a-zA-Z0-9_]([a-zA-Z0-9\-_]*[a-zA-Z0-9_])?\.?$/;
const reIface = /^[a-zA-Z][a-zA-Z0-9_.\-:]{1,20}$/;
const reBridge = /^[-_.\w\d]+$/;
const reEmail = /^[\w+\-~]+(\.[\w+\-~]+)*@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$/;
const reVolume = /^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i;
const reUrlencoded = /^[%a-zA-Z0-9\-_.!~*'()]*$/;
const reTag = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

const cidr = (v: string, family: 0 | 4 | 6): boolean => {
  const [ip, mask, ...rest] = v.split('/');
  if (rest.length > 0 || ip === undefined || mask === undefined || !/^\d+$/.test(mask)) return false;
  const f = isIP(ip);
  if (f === 0 || (family !== 0 && f !== family)) return false;
  return Number(mask) <= (f === 4 ? 32 : 128);
};

type FormatCheck = (v: string) => string | undefined;
const re =
  (r: RegExp, msg: (v: string) => string): FormatCheck =>
  (v) =>
    r.test(v) ? undefined : msg(v);

const FORMATS: Record<string, FormatCheck> = {
  'pve-node': re(reNode, (v) => `value '${v}' does not look like a valid node name`),
  'pve-vmid': re(reVmid, (v) => `value '${v}' does not look like a valid VM ID`),
  'pve-storage-id': re(reStorage, (v) => `storage ID '${v}' contains illegal characters`),
  'pve-configid': re(reConfigId, (v) => `invalid configuration ID '${v}'`),
  'pve-realm': re(reRealm, (v) => `value '${v}' does not look like a valid realm`),
  'pve-userid': re(reUserid, (v) => `value '${v}' does not look like a valid user name`),
  'pve-tokenid': re(reTokenid, (v) => `value '${v}' does not look like a valid token ID`),
  'pve-poolid': re(rePool, (v) => `invalid pool ID '${v}'`),
  'mac-addr': re(reMac, (v) => `value '${v}' does not look like a valid MAC address`),
  'mac-prefix': re(reMacPrefix, (v) => `value '${v}' does not look like a valid MAC prefix`),
  'dns-name': re(reDns, (v) => `value '${v}' does not look like a valid DNS name`),
  'pve-iface': re(reIface, (v) => `invalid network interface name '${v}'`),
  'pve-bridge-id': re(reBridge, (v) => `invalid bridge ID '${v}'`),
  email: re(reEmail, (v) => `value '${v}' does not look like a valid email address`),
  'email-opt': (v) =>
    v === '' || reEmail.test(v) ? undefined : `value '${v}' does not look like a valid email address`,
  'email-or-username': (v) =>
    reEmail.test(v) || reUserid.test(v) ? undefined : `value '${v}' does not look like a valid email or user name`,
  'pve-volume-id': re(reVolume, (v) => `unable to parse volume ID '${v}'`),
  'pve-volume-id-or-qm-path': (v) =>
    v === 'none' || v === 'cdrom' || v.startsWith('/') || reVolume.test(v)
      ? undefined
      : `unable to parse volume ID '${v}'`,
  'pve-volume-id-or-absolute-path': (v) =>
    v.startsWith('/') || reVolume.test(v) ? undefined : `unable to parse volume ID '${v}'`,
  'pve-lxc-mp-string': (v) => (v.startsWith('/') || reVolume.test(v) ? undefined : `unable to parse volume ID '${v}'`),
  urlencoded: re(reUrlencoded, (v) => `value '${v}' is not urlencoded`),
  ip: (v) => (isIP(v) !== 0 ? undefined : `value '${v}' is not a valid IP address`),
  ipv4: (v) => (isIP(v) === 4 ? undefined : `value '${v}' is not a valid IPv4 address`),
  ipv6: (v) => (isIP(v) === 6 ? undefined : `value '${v}' is not a valid IPv6 address`),
  address: (v) => (isIP(v) !== 0 || reDns.test(v) ? undefined : `value '${v}' is not a valid address`),
  CIDR: (v) => (cidr(v, 0) ? undefined : `value '${v}' is not a valid CIDR`),
  CIDRv4: (v) => (cidr(v, 4) ? undefined : `value '${v}' is not a valid IPv4 CIDR`),
  CIDRv6: (v) => (cidr(v, 6) ? undefined : `value '${v}' is not a valid IPv6 CIDR`),
  IPorCIDR: (v) => (isIP(v) !== 0 || cidr(v, 0) ? undefined : `value '${v}' is not a valid IP address or CIDR`),
  ipv4mask: (v) => (isIP(v) === 4 ? undefined : `value '${v}' is not a valid IPv4 netmask`),
  'pve-tag': re(reTag, (v) => `invalid tag '${v}'`),
  'pve-startup-order': re(
    /^((order=)?\d+)?(,?(up|down)=\d+)*$/,
    (v) => `value '${v}' does not look like a valid startup order`,
  ),
};

// `-list` formats: items split on commas, semicolons and white space.
const LIST_BASES: Record<string, string> = {
  'pve-tag-list': 'pve-tag',
  'pve-vmid-list': 'pve-vmid',
  'pve-node-list': 'pve-node',
  'pve-storage-id-list': 'pve-storage-id',
  'pve-configid-list': 'pve-configid',
  'email-list': 'email',
  'email-or-username-list': 'email-or-username',
  'ip-list': 'ip',
  'address-list': 'address',
  'dns-name-list': 'dns-name',
  'pve-iface-list': 'pve-iface',
  'pve-userid-list': 'pve-userid',
  'pve-tokenid-list': 'pve-tokenid',
};

function namedFormat(name: string): FormatCheck | undefined {
  const direct = FORMATS[name];
  if (direct) return direct;
  const base = LIST_BASES[name];
  const item = base ? FORMATS[base] : undefined;
  if (!item) return undefined;
  return (v) => {
    for (const part of v.split(/[,;\s]+/)) {
      if (part === '') continue;
      const err = item(part);
      if (err) return err;
    }
    return undefined;
  };
}

// --- property strings ("key=value,key2=value2") -----------------------------------------------

/** Splits a PVE property string on commas, honouring double quotes. */
export function splitPropertyString(value: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && i + 1 < value.length) cur += value[++i];
    else if (c === ',' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts.filter((p) => p !== '');
}

/** Parses a property string into a map, without schema (default key under `_default`). */
export function parsePropertyString(value: string, defaultKey = '_default'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of splitPropertyString(value)) {
    const eq = part.indexOf('=');
    if (eq < 0) out[defaultKey] = part;
    else out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Formats a map back into a property string (default key first, without `key=`). */
export function formatPropertyString(props: Record<string, string | number | undefined>, defaultKey?: string): string {
  const parts: string[] = [];
  if (defaultKey && props[defaultKey] !== undefined) parts.push(String(props[defaultKey]));
  for (const [k, v] of Object.entries(props)) {
    if (k === defaultKey || v === undefined) continue;
    parts.push(`${k}=${v}`);
  }
  return parts.join(',');
}

const objectCheckers = new WeakMap<object, (v: string) => string | undefined>();

function compileObjectFormat(format: Record<string, PveJsonSchema>): (v: string) => string | undefined {
  const hit = objectCheckers.get(format);
  if (hit) return hit;
  let defaultKey: string | undefined;
  const subs = new Map<string, Checker>();
  const required: string[] = [];
  for (const [key, sub] of Object.entries(format)) {
    if (sub.alias !== undefined) continue;
    if (sub.default_key === 1) defaultKey = key;
    subs.set(key, compileSchema(sub));
    if (!isOptional(sub)) required.push(key);
  }
  const check = (value: string): string | undefined => {
    const seen = new Map<string, string>();
    const errs: string[] = [];
    for (const part of splitPropertyString(value)) {
      const eq = part.indexOf('=');
      let key: string;
      let val: string;
      if (eq < 0) {
        if (!defaultKey) {
          errs.push(`${part}: ${MSG_NOT_DEFINED}`);
          continue;
        }
        if (seen.has(defaultKey)) {
          errs.push(`${defaultKey}: duplicate key in comma-separated list property`);
          continue;
        }
        key = defaultKey;
        val = part;
      } else {
        key = part.slice(0, eq);
        val = part.slice(eq + 1);
      }
      const def = format[key];
      if (def?.alias !== undefined) {
        if (def.keyAlias !== undefined) {
          // e.g. "virtio=AA:BB:..." is model=virtio,macaddr=AA:BB:...
          seen.set(def.keyAlias, key);
        }
        key = def.alias;
      }
      const checker = subs.get(key);
      if (!checker) {
        errs.push(`${key}: ${MSG_NOT_DEFINED}`);
        continue;
      }
      if (seen.has(key) && !(def?.keyAlias !== undefined)) {
        errs.push(`${key}: duplicate key in comma-separated list property`);
        continue;
      }
      seen.set(key, val);
      try {
        checker(val);
      } catch (e) {
        errs.push(`${key}: ${(e as Error).message}`);
      }
    }
    for (const key of required) if (!seen.has(key)) errs.push(`${key}: ${MSG_MISSING}`);
    return errs.length > 0 ? `format error\n${errs.join('\n')}` : undefined;
  };
  objectCheckers.set(format, check);
  return check;
}

// --- scalar checkers ------------------------------------------------------------------------

const reInteger = /^-?\d+$/;
const reNumber = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const reTrue = /^(1|true|yes|on)$/i;
const reFalse = /^(0|false|no|off)$/i;

const show = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

function scalar(v: unknown, type: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  throw new Invalid(`type check ('${type}') failed - got ${Array.isArray(v) ? 'ARRAY' : 'HASH'}`);
}

const compiled = new WeakMap<object, Checker>();

function compilePattern(pattern: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch {
    return undefined;
  }
}

/** Compiles one parameter schema into a function returning the coerced value or throwing Invalid. */
export function compileSchema(schema: PveJsonSchema): Checker {
  const hit = compiled.get(schema);
  if (hit) return hit;
  const type = schema.type ?? 'string';
  const min = num(schema.minimum);
  const max = num(schema.maximum);
  const enumList = schema.enum;
  const enumSet = enumList ? new Set(enumList) : undefined;
  const pattern = schema.pattern ? compilePattern(schema.pattern) : undefined;
  const format = schema.format;
  const formatCheck =
    typeof format === 'string' ? namedFormat(format) : format ? compileObjectFormat(format) : undefined;
  const range = (n: number) => {
    if (min !== undefined && n < min) throw new Invalid(`value must have a minimum value of ${min}`);
    if (max !== undefined && n > max) throw new Invalid(`value must have a maximum value of ${max}`);
  };
  let checker: Checker;
  switch (type) {
    case 'integer':
      checker = (v) => {
        const s = scalar(v, 'integer');
        if (!reInteger.test(s)) throw new Invalid(`type check ('integer') failed - got '${s}'`);
        const n = Number(s);
        range(n);
        if (enumSet && !enumSet.has(s)) throw new Invalid(enumMessage(s, enumList ?? []));
        return n;
      };
      break;
    case 'number':
      checker = (v) => {
        const s = scalar(v, 'number');
        if (!reNumber.test(s)) throw new Invalid(`type check ('number') failed - got '${s}'`);
        const n = Number(s);
        range(n);
        return n;
      };
      break;
    case 'boolean':
      checker = (v) => {
        if (typeof v === 'boolean') return v;
        const s = scalar(v, 'boolean');
        if (reTrue.test(s)) return true;
        if (reFalse.test(s)) return false;
        throw new Invalid(`type check ('boolean') failed - got '${s}'`);
      };
      break;
    case 'array': {
      const item = schema.items ? compileSchema(schema.items) : (v: unknown) => v;
      checker = (v) => {
        const list = Array.isArray(v) ? v : typeof v === 'string' ? v.split('\0') : [v];
        return list.map((x) => item(x));
      };
      break;
    }
    case 'object':
      checker = (v) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v))
          throw new Invalid(`type check ('object') failed - got '${show(v)}'`);
        return v;
      };
      break;
    case 'null':
      checker = (v) => v;
      break;
    default:
      checker = (v) => {
        const s = scalar(v, 'string');
        if (schema.maxLength !== undefined && s.length > schema.maxLength)
          throw new Invalid(`value may only be ${schema.maxLength} characters long`);
        if (schema.minLength !== undefined && s.length < schema.minLength)
          throw new Invalid(`value must be at least ${schema.minLength} characters long`);
        if (enumSet && !enumSet.has(s)) throw new Invalid(enumMessage(s, enumList ?? []));
        if (pattern && !pattern.test(s)) throw new Invalid('value does not match the regex pattern');
        if (formatCheck) {
          const err = formatCheck(s);
          if (err) throw new Invalid(`invalid format - ${err}`);
        }
        return s;
      };
  }
  compiled.set(schema, checker);
  return checker;
}

function enumMessage(v: string, list: string[]): string {
  return `value '${v}' does not have a value in the enumeration '${list.join(', ')}'`;
}

// --- operations -----------------------------------------------------------------------------

interface NumberedParam {
  prefix: string;
  re: RegExp;
  max: number | undefined;
  check: Checker;
  schema: PveJsonSchema;
}

export interface CompiledOperation {
  fixed: Map<string, { check: Checker; schema: PveJsonSchema; optional: boolean }>;
  numbered: NumberedParam[];
  required: string[];
  requires: Array<[string, string]>;
  additional: boolean;
}

const compiledOps = new WeakMap<PveOperation, CompiledOperation>();

/** Compiles (once, then cached) an operation's parameter schema. */
export function compileOperation(op: PveOperation): CompiledOperation {
  const hit = compiledOps.get(op);
  if (hit) return hit;
  const fixed: CompiledOperation['fixed'] = new Map();
  const numbered: NumberedParam[] = [];
  const required: string[] = [];
  const requires: Array<[string, string]> = [];
  for (const [name, schema] of Object.entries(op.parameters.properties ?? {})) {
    const m = /^(.+)\[n\]$/.exec(name);
    if (m) {
      const prefix = m[1] as string;
      numbered.push({
        prefix,
        re: new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}(\\d+)$`),
        max: schema.indexMax,
        check: compileSchema(schema),
        schema,
      });
      continue;
    }
    const optional = isOptional(schema);
    fixed.set(name, { check: compileSchema(schema), schema, optional });
    if (!optional) required.push(name);
    if (schema.requires) requires.push([name, schema.requires]);
  }
  const ap = op.parameters.additionalProperties;
  const result: CompiledOperation = {
    fixed,
    numbered,
    required,
    requires,
    // Absent means "allowed" in PVE's JSON schema code; 0 forbids.
    additional: ap === undefined || ap === 1 || typeof ap === 'object',
  };
  compiledOps.set(op, result);
  return result;
}

export interface ValidationOutcome {
  params: Record<string, unknown>;
  errors: Record<string, string> | undefined;
}

/** Validates raw request parameters (strings, string arrays or JSON values) against an operation. */
export function validateParams(op: PveOperation, raw: Record<string, unknown>): ValidationOutcome {
  const c = compileOperation(op);
  const params: Record<string, unknown> = {};
  let errors: Record<string, string> | undefined;
  const fail = (k: string, msg: string) => {
    errors ??= {};
    errors[k] = msg;
  };
  for (const [key, value] of Object.entries(raw)) {
    if (key === '_dc') continue;
    const def = c.fixed.get(key);
    let check: Checker | undefined;
    let optional = true;
    let schemaType: string | undefined;
    if (def) {
      check = def.check;
      optional = def.optional;
      schemaType = def.schema.type;
    } else {
      for (const n of c.numbered) {
        const m = n.re.exec(key);
        if (m) {
          if (n.max !== undefined && Number(m[1]) > n.max) break;
          check = n.check;
          schemaType = n.schema.type;
          break;
        }
      }
    }
    if (!check) {
      if (!c.additional) fail(key, MSG_NOT_DEFINED);
      else params[key] = value;
      continue;
    }
    // Repeated form keys only make sense for arrays.
    let v = value;
    if (Array.isArray(v) && schemaType !== 'array') v = v[v.length - 1];
    if (v === '' && optional && schemaType !== 'string') continue;
    if (v === null || v === undefined) {
      if (!optional) fail(key, MSG_MISSING);
      continue;
    }
    try {
      params[key] = check(v);
    } catch (e) {
      if (e instanceof Invalid) fail(key, e.message);
      else throw e;
    }
  }
  for (const key of c.required) {
    if (!(key in params) && !errors?.[key]) fail(key, MSG_MISSING);
  }
  for (const [key, needs] of c.requires) {
    if (key in params && !(needs in params) && !errors?.[needs])
      fail(needs, `missing property - '${key}' requires this property`);
  }
  return { params, errors };
}
