export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Readonly<Record<string, unknown>>;

/** What the clients log through. Fields are redacted before they reach it. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** A logger writing one JSON line per entry to stderr (or `write`), from `level` up. */
export function jsonLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Logger {
  const at = (lvl: LogLevel) => (message: string, fields?: LogFields) => {
    if (order[lvl] < order[level]) return;
    write(
      JSON.stringify({ time: new Date().toISOString(), level: lvl, message, ...(redact(fields ?? {}) as LogFields) }),
    );
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Wraps a logger so that every message and field passes through `redact` first. */
export function redactingLogger(inner: Logger): Logger {
  const at = (fn: (m: string, f?: LogFields) => void) => (message: string, fields?: LogFields) =>
    fields === undefined ? fn(redactText(message)) : fn(redactText(message), redact(fields) as LogFields);
  return {
    debug: at(inner.debug.bind(inner)),
    info: at(inner.info.bind(inner)),
    warn: at(inner.warn.bind(inner)),
    error: at(inner.error.bind(inner)),
  };
}

const SECRET_KEY =
  /pass(word|phrase)?|secret|token|ticket|csrf|cookie|authori[sz]ation|private.?key|^key$|^x-lxd-secret$/i;
const SECRET_IN_TEXT: readonly RegExp[] = [
  /(PVEAuthCookie=)[^;\s&]+/g,
  /(PVEAPIToken=[^=\s]+=)[^\s;&"]+/g,
  /(PVE:[^:\s]+:[0-9A-F]{8}::)[A-Za-z0-9+/=]+/g,
  /(CSRFPreventionToken[:=]\s*)[^\s;&"]+/gi,
  /((?:password|secret|token|ticket)=)[^&\s"]+/gi,
  /(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----)/g,
];

export const REDACTED = '[redacted]';

/** Masks secrets that appear inside free text (URLs, headers, messages). */
export function redactText(text: string): string {
  let out = text;
  for (const pattern of SECRET_IN_TEXT) {
    out = out.replace(pattern, (_m, head: string, tail?: string) =>
      typeof tail === 'string' && tail.startsWith('-----END') ? `${head}${REDACTED}${tail}` : `${head}${REDACTED}`,
    );
  }
  return out;
}

/** Deep copy with values under secret-looking keys replaced, and secrets inside strings masked. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object' && !(value instanceof Error)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redact(v, depth + 1);
    }
    return out;
  }
  if (value instanceof Error) return { name: value.name, message: redactText(value.message) };
  return value;
}
