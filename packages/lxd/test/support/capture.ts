import type { Logger } from '@vmplane/lxd';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Readonly<Record<string, unknown>>;
}

/** A logger that keeps every line, for tests that look at what the client did. */
export function capturingLogger(onLine?: (line: LogLine) => void): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (message: string, fields?: Readonly<Record<string, unknown>>) => {
    const line = { level, message, fields: fields ?? {} };
    lines.push(line);
    onLine?.(line);
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The `METHOD path?query` of each request the transport logged. */
export function requestsOf(lines: readonly LogLine[]): string[] {
  return lines
    .filter((l) => l.message === 'lxd request')
    .map((l) => `${String(l.fields.method)} ${String(l.fields.path)}${String(l.fields.query ?? '')}`);
}
