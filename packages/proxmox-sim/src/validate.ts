/**
 * Parameter validation as PVE::JSONSchema does it: type, then format, pattern, length, range and
 * enumeration; property strings key by key; numbered parameters (`net0`..`net31`); `requires`;
 * `oneOf` chosen by a sibling's value. Each operation's schema is compiled once.
 */
import { isOptional, type PveJsonSchema } from './apidoc.js';
import { FormatRegistry, type HashFormat } from './formats/index.js';
import { compilePerlPattern, UnsupportedPatternError } from './perl-regex.js';
import { joinProblems, type Problem, problem } from './problem.js';
import { splitPropertyString } from './property-string.js';
import type { PveOperation } from './schema.js';

export { formatPropertyString, parsePropertyString, splitPropertyString } from './property-string.js';

/** Raised by a checker; `at` locates it below the parameter (`[2]` of an array, `.key` of an object). */
class Invalid extends Error {
  constructor(
    readonly problem: Problem,
    readonly at = '',
  ) {
    super(problem.full);
  }
}

type Checker = (value: unknown) => unknown;

const MSG_NOT_DEFINED = 'property is not defined in schema and the schema does not allow additional properties';
const MSG_MISSING = 'property is missing and it is not optional';

const reInteger = /^[+-]?\d+$/;
const reNumber = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const reTrue = /^(1|true|yes|on)$/i;
const reFalse = /^(0|false|no|off)$/i;

/**
 * Highest indexes of numbered parameters the apidoc does not state (it writes `net[n]` and leaves
 * the bound to PVE's code): MAX_NETS, MAX_HOSTPCI_DEVICES, MAX_NUMA, MAX_UNUSED_DISKS,
 * MAX_USB_DEVICES, the virtiofs limit, the container's mount points and devices, ACME domains and
 * corosync links.
 */
const INDEX_MAX: Record<string, number> = {
  net: 31,
  ipconfig: 31,
  hostpci: 15,
  numa: 7,
  unused: 255,
  usb: 14,
  virtiofs: 9,
  mp: 255,
  dev: 255,
  acmedomain: 4,
  link: 7,
};

/** A parameter value as a string, or Invalid for the JSON values PVE refuses for scalars. */
function scalar(v: unknown, type: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  throw new Invalid(problem(`type check ('${type}') failed - got ${Array.isArray(v) ? 'ARRAY' : 'HASH'}`));
}

const enumMessage = (list: string[]) => (show: (v: string) => string, v: string) =>
  `value '${show(v)}' does not have a value in the enumeration '${list.join(', ')}'`;

interface NumberedParam {
  prefix: string;
  re: RegExp;
  max: number | undefined;
  check: Checker;
  schema: PveJsonSchema;
}

interface FixedParam {
  check: Checker;
  schema: PveJsonSchema;
  optional: boolean;
}

export interface CompiledOperation {
  fixed: Map<string, FixedParam>;
  numbered: NumberedParam[];
  required: string[];
  requires: Array<[string, string]>;
  additional: boolean;
}

/** Compiles schemas against one schema's formats, once per schema object. */
export class Validator {
  private readonly checkers = new WeakMap<object, Checker>();
  private readonly hashes = new WeakMap<object, (v: string) => Problem | undefined>();
  private readonly operations = new WeakMap<PveOperation, CompiledOperation>();
  /** Patterns that could not be translated to JavaScript (they are then not checked). */
  readonly uncompiledPatterns = new Set<string>();

  constructor(readonly formats: FormatRegistry = new FormatRegistry()) {}

  operation(op: PveOperation): CompiledOperation {
    const hit = this.operations.get(op);
    if (hit) return hit;
    const fixed = new Map<string, FixedParam>();
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
          max: schema.indexMax ?? INDEX_MAX[prefix],
          check: this.schema(schema),
          schema,
        });
        continue;
      }
      const optional = isOptional(schema) || schema.alias !== undefined;
      fixed.set(name, { check: this.schema(schema), schema, optional });
      if (!optional) required.push(name);
      if (schema.requires) requires.push([name, schema.requires]);
    }
    const ap = op.parameters.additionalProperties;
    const compiled: CompiledOperation = {
      fixed,
      numbered,
      required,
      requires,
      // Absent means "allowed" in PVE's JSON schema code; 0 forbids.
      additional: ap === undefined || ap === 1 || typeof ap === 'object',
    };
    this.operations.set(op, compiled);
    return compiled;
  }

  /** One schema as a function returning the coerced value or throwing Invalid. */
  schema(schema: PveJsonSchema): Checker {
    const hit = this.checkers.get(schema);
    if (hit) return hit;
    const checker = this.build(schema);
    this.checkers.set(schema, checker);
    return checker;
  }

  private build(schema: PveJsonSchema): Checker {
    const type = schema.type ?? 'string';
    switch (type) {
      case 'integer':
      case 'number': {
        const re = type === 'integer' ? reInteger : reNumber;
        const rest = this.scalarChecks(schema);
        return (v) => {
          const s = scalar(v, type);
          if (!re.test(s)) throw new Invalid(problem((show) => `type check ('${type}') failed - got '${show(s)}'`));
          rest(s);
          return Number(s);
        };
      }
      case 'boolean':
        return (v) => {
          if (typeof v === 'boolean') return v;
          const s = scalar(v, 'boolean');
          if (reTrue.test(s)) return true;
          if (reFalse.test(s)) return false;
          throw new Invalid(problem((show) => `type check ('boolean') failed - got '${show(s)}'`));
        };
      case 'array': {
        const item = schema.items ? this.schema(schema.items) : (x: unknown) => x;
        return (v) => {
          // Form bodies carry a list as repeated fields, which PVE joins with NUL.
          const list = Array.isArray(v) ? v : typeof v === 'string' ? v.split('\0') : [v];
          return list.map((x, i) => {
            try {
              return item(x);
            } catch (e) {
              if (e instanceof Invalid) throw new Invalid(e.problem, `[${i}]${e.at}`);
              throw e;
            }
          });
        };
      }
      case 'object':
        return this.object(schema);
      case 'null':
        return (v) => v;
      default: {
        const rest = this.scalarChecks(schema);
        return (v) => {
          const s = scalar(v, type);
          rest(s);
          return s;
        };
      }
    }
  }

  /** A JSON object parameter, its properties checked as PVE's check_object does. */
  private object(schema: PveJsonSchema): Checker {
    const props = Object.entries(schema.properties ?? {}).map(
      ([k, sub]) => [k, this.schema(sub), isOptional(sub)] as const,
    );
    const closed = schema.additionalProperties === 0 && schema.properties !== undefined;
    return (v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new Invalid(problem(`type check ('object') failed${Array.isArray(v) ? ' - got ARRAY' : ''}`));
      const obj = v as Record<string, unknown>;
      const out: Record<string, unknown> = { ...obj };
      for (const [k, check, optional] of props) {
        if (obj[k] === undefined || obj[k] === null) {
          if (!optional) throw new Invalid(problem(MSG_MISSING), `.${k}`);
          continue;
        }
        try {
          out[k] = check(obj[k]);
        } catch (e) {
          if (e instanceof Invalid) throw new Invalid(e.problem, `.${k}${e.at}`);
          throw e;
        }
      }
      if (closed)
        for (const k of Object.keys(obj))
          if (!schema.properties?.[k]) throw new Invalid(problem(MSG_NOT_DEFINED), `.${k}`);
      return out;
    };
  }

  /** What PVE checks of every scalar after its type: format, pattern, length, range, enumeration. */
  private scalarChecks(schema: PveJsonSchema): (s: string) => void {
    const format = this.format(schema.format);
    const pattern = this.pattern(schema.pattern);
    const { maxLength, minLength, maximum, minimum } = schema;
    const enumSet = schema.enum ? new Set(schema.enum) : undefined;
    const enumText = schema.enum ? enumMessage(schema.enum) : undefined;
    return (s) => {
      if (format) {
        const p = format(s);
        if (p) throw new Invalid(p.prefixed('invalid format - '));
      }
      if (pattern && !pattern.test(s)) throw new Invalid(problem('value does not match the regex pattern'));
      if (maxLength !== undefined && s.length > maxLength)
        throw new Invalid(problem(`value may only be ${maxLength} characters long`));
      if (minLength !== undefined && s.length < minLength)
        throw new Invalid(problem(`value must be at least ${minLength} characters long`));
      if ((maximum !== undefined || minimum !== undefined) && reNumber.test(s)) {
        const n = Number(s);
        if (maximum !== undefined && n > maximum)
          throw new Invalid(problem(`value must have a maximum value of ${maximum}`));
        if (minimum !== undefined && n < minimum)
          throw new Invalid(problem(`value must have a minimum value of ${minimum}`));
      }
      if (enumSet && enumText && !enumSet.has(s)) throw new Invalid(problem((show) => enumText(show, s)));
    };
  }

  private pattern(pattern: string | undefined): RegExp | undefined {
    if (pattern === undefined) return undefined;
    try {
      return compilePerlPattern(pattern);
    } catch (e) {
      if (!(e instanceof UnsupportedPatternError)) throw e;
      this.uncompiledPatterns.add(pattern);
      return undefined;
    }
  }

  private format(format: PveJsonSchema['format']): ((v: string) => Problem | undefined) | undefined {
    if (format === undefined) return undefined;
    if (typeof format === 'object') return this.propertyString({ keys: format });
    const resolved = this.formats.resolve(format);
    if (!resolved) return undefined;
    return resolved.kind === 'check' ? resolved.check : this.propertyString(resolved.format);
  }

  /** A property string's checker: keys, default key, aliases, duplicates, required keys, each value. */
  private propertyString(hash: HashFormat): (v: string) => Problem | undefined {
    const hit = this.hashes.get(hash.keys);
    if (hit) return hit;
    const { keys } = hash;
    let defaultKey: string | undefined;
    const subs = new Map<string, Checker>();
    const required: string[] = [];
    for (const [key, sub] of Object.entries(keys)) {
      if (sub.alias !== undefined) continue;
      if (sub.default_key === 1) defaultKey = key;
      subs.set(key, this.schema(sub));
      if (!isOptional(sub)) required.push(key);
    }
    const check = (value: string): Problem | undefined => {
      const seen = new Map<string, string>();
      const errs: Problem[] = [];
      for (const part of splitPropertyString(value)) {
        if (/^\s*$/.test(part)) continue;
        const eq = part.indexOf('=');
        let key: string;
        let val: string;
        if (eq < 0) {
          if (!defaultKey) {
            errs.push(problem('value without key, but schema does not define a default key'));
            continue;
          }
          if (seen.has(defaultKey)) {
            errs.push(problem(`${defaultKey}: duplicate key in comma-separated list property`));
            continue;
          }
          key = defaultKey;
          val = part;
        } else {
          key = part.slice(0, eq);
          val = part.slice(eq + 1);
        }
        const def = keys[key];
        if (def?.alias !== undefined) {
          // e.g. "virtio=AA:BB:..." is model=virtio,macaddr=AA:BB:...
          if (def.keyAlias !== undefined) seen.set(def.keyAlias, key);
          key = def.alias;
        }
        const checker = subs.get(key);
        if (!checker) {
          errs.push(problem(`${key}: ${MSG_NOT_DEFINED}`));
          continue;
        }
        if (seen.has(key) && def?.keyAlias === undefined) {
          errs.push(problem(`${key}: duplicate key in comma-separated list property`));
          continue;
        }
        seen.set(key, val);
        try {
          checker(val);
        } catch (e) {
          if (!(e instanceof Invalid)) throw e;
          errs.push(e.problem.prefixed(`${key}${e.at}: `));
        }
      }
      for (const key of required) if (!seen.has(key)) errs.push(problem(`${key}: ${MSG_MISSING}`));
      if (errs.length === 0 && hash.check) {
        const p = hash.check(Object.fromEntries(seen));
        if (p) errs.push(p);
      }
      return errs.length > 0 ? joinProblems('format error', errs) : undefined;
    };
    this.hashes.set(hash.keys, check);
    return check;
  }
}

export interface ValidationOutcome {
  params: Record<string, unknown>;
  /** PVE's per-parameter messages, as the caller gets them; undefined when the request is valid. */
  errors: Record<string, string> | undefined;
  /** The same messages without the caller's values, for records that are kept. */
  safeErrors: Record<string, string> | undefined;
}

const defaultValidator = new Validator();

/** Validates raw request parameters (strings, NUL-joined repeated fields or JSON values) against an operation. */
export function validateParams(
  op: PveOperation,
  raw: Record<string, unknown>,
  validator: Validator = defaultValidator,
): ValidationOutcome {
  const c = validator.operation(op);
  const params: Record<string, unknown> = {};
  let errors: Record<string, string> | undefined;
  let safeErrors: Record<string, string> | undefined;
  const fail = (k: string, p: Problem) => {
    errors ??= {};
    safeErrors ??= {};
    errors[k] = p.full;
    safeErrors[k] = p.safe;
  };
  for (const [key, value] of Object.entries(raw)) {
    if (key === '_dc') continue;
    const def = c.fixed.get(key);
    let check: Checker | undefined;
    let optional = true;
    let schema: PveJsonSchema | undefined;
    if (def) {
      ({ check, optional, schema } = def);
    } else {
      for (const n of c.numbered) {
        const m = n.re.exec(key);
        if (m) {
          if (n.max !== undefined && Number(m[1]) > n.max) break;
          ({ check, schema } = n);
          break;
        }
      }
    }
    if (!check || !schema) {
      if (!c.additional) fail(key, problem(MSG_NOT_DEFINED));
      else params[key] = value;
      continue;
    }
    if (schema.oneOf && schema['type-property']) {
      const selector = String(raw[schema['type-property']] ?? '');
      const variant = schema.oneOf.find((s) => s['instance-types']?.includes(selector));
      if (!variant) {
        const by = schema['type-property'];
        fail(
          key,
          problem((show) => `no schema for ${by} '${show(selector)}'`),
        );
        continue;
      }
      check = validator.schema(variant);
    }
    if (value === '' && optional && schema.type !== 'string') continue;
    if (value === null || value === undefined) {
      if (!optional) fail(key, problem(MSG_MISSING));
      continue;
    }
    try {
      params[key] = check(value);
    } catch (e) {
      if (e instanceof Invalid) fail(`${key}${e.at}`, e.problem);
      else throw e;
    }
  }
  for (const key of c.required) {
    if (!(key in params) && !errors?.[key]) fail(key, problem(MSG_MISSING));
  }
  for (const [key, needs] of c.requires) {
    if (key in params && !(needs in params) && !errors?.[needs])
      fail(needs, problem(`missing property - '${key}' requires this property`));
  }
  return { params, errors, safeErrors };
}
