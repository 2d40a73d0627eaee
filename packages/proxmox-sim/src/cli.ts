/** The bin's command line: flags checked before anything starts, with one clear message per mistake. */
import { parseArgs } from 'node:util';
import type { SimulatorOptions } from './server.js';

export const USAGE =
  'usage: vmplane-proxmox-sim [--nodes 3] [--guests 50] [--port 8006] [--host 127.0.0.1] [--tls]\n' +
  '                           [--password PW] [--token-secret S] [--latency MS] [--task-duration MS]\n' +
  '                           [--boot-delay MS] [--guest-ssh-port 2222]\n' +
  '                           [--schema apidoc.json|apidoc.js|pve-api.json] [--quiet]\n';

export type CliResult =
  | { kind: 'run'; options: SimulatorOptions; quiet: boolean }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

/** Integer flags and their allowed ranges. */
const INTEGER_FLAGS = {
  nodes: { min: 1, max: 200 },
  guests: { min: 0, max: 100_000 },
  port: { min: 0, max: 65_535 },
  latency: { min: 0, max: 600_000 },
  'task-duration': { min: 0, max: 86_400_000 },
  'boot-delay': { min: 0, max: 3_600_000 },
  'guest-ssh-port': { min: 0, max: 65_535 },
} as const;

type IntegerFlag = keyof typeof INTEGER_FLAGS;

function integerFlag(name: IntegerFlag, text: string): number | string {
  const { min, max } = INTEGER_FLAGS[name];
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
    return `--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`;
  return Number(text);
}

export function parseCli(argv: string[]): CliResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        nodes: { type: 'string', default: '3' },
        guests: { type: 'string', default: '50' },
        port: { type: 'string', default: '8006' },
        host: { type: 'string', default: '127.0.0.1' },
        tls: { type: 'boolean', default: false },
        password: { type: 'string' },
        'token-secret': { type: 'string' },
        latency: { type: 'string', default: '0' },
        'task-duration': { type: 'string', default: '1000' },
        'boot-delay': { type: 'string', default: '200' },
        'guest-ssh-port': { type: 'string', default: '2222' },
        schema: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) {
    return { kind: 'error', message: e instanceof Error ? e.message : String(e) };
  }
  if (values.help) return { kind: 'help' };
  const numbers: Partial<Record<IntegerFlag, number>> = {};
  for (const name of Object.keys(INTEGER_FLAGS) as IntegerFlag[]) {
    const parsed = integerFlag(name, String(values[name]));
    if (typeof parsed === 'string') return { kind: 'error', message: parsed };
    numbers[name] = parsed;
  }
  const text = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const host = text('host');
  if (host === undefined) return { kind: 'error', message: '--host must not be empty' };
  const options: SimulatorOptions = {
    nodes: numbers.nodes as number,
    guests: numbers.guests as number,
    port: numbers.port as number,
    host,
    tls: values.tls === true,
    latency: numbers.latency as number,
    taskDuration: numbers['task-duration'] as number,
    bootDelayMs: numbers['boot-delay'] as number,
    guestSshPort: numbers['guest-ssh-port'] as number,
  };
  const password = text('password');
  if (password !== undefined) options.rootPassword = password;
  const tokenSecret = text('token-secret');
  if (tokenSecret !== undefined) options.tokenSecret = tokenSecret;
  const schema = text('schema');
  if (schema !== undefined) options.schemaPath = schema;
  return { kind: 'run', options, quiet: values.quiet === true };
}
