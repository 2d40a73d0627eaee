import { isOptional, type PveJsonSchema } from './apidoc.js';

/**
 * A minimal value that satisfies a `returns` schema: arrays are empty, objects carry their
 * required properties, scalars are zero-like (or the first enum value, or the minimum).
 */
export function generateFromSchema(schema: PveJsonSchema | undefined, depth = 0): unknown {
  if (!schema || depth > 8) return null;
  switch (schema.type) {
    case 'array':
      return [];
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, sub] of Object.entries(schema.properties ?? {})) {
        if (!isOptional(sub)) out[k] = generateFromSchema(sub, depth + 1);
      }
      return out;
    }
    case 'string':
      return schema.enum?.[0] ?? (typeof schema.default === 'string' ? schema.default : '');
    case 'integer':
    case 'number': {
      if (typeof schema.default === 'number') return schema.default;
      const min = Number(schema.minimum);
      return Number.isFinite(min) ? min : 0;
    }
    case 'boolean':
      return 0;
    default:
      return null;
  }
}

/**
 * Adds the required properties a modelled answer lacks (objects only, recursively through
 * arrays), so answers always satisfy the schema even where the model is thin.
 */
export function fillRequired(value: unknown, schema: PveJsonSchema | undefined, depth = 0): unknown {
  if (!schema || depth > 4 || value === null || value === undefined) return value;
  if (schema.type === 'array' && Array.isArray(value) && schema.items?.type === 'object') {
    for (const item of value) fillRequired(item, schema.items, depth + 1);
    return value;
  }
  if (schema.type === 'object' && typeof value === 'object' && !Array.isArray(value) && schema.properties) {
    const obj = value as Record<string, unknown>;
    for (const [k, sub] of Object.entries(schema.properties)) {
      if (obj[k] === undefined) {
        if (!isOptional(sub)) obj[k] = generateFromSchema(sub, depth + 1);
      } else if (sub.type === 'object' || sub.type === 'array') fillRequired(obj[k], sub, depth + 1);
    }
  }
  return value;
}
