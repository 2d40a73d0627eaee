/** `vmplane list`, `vmplane rm` and `vmplane logs`: hypeman's instance API. */
import { type Client, segment } from '../client.js';
import { UsageError } from '../errors.js';
import { formatTable } from '../render/table.js';
import { readEvents } from '../sse.js';

/** The fields of hypeman's `Instance` the CLI shows; the rest is passed through by `--json`. */
export interface InstanceSummary {
  id: string;
  name: string;
  image: string;
  state: string;
  provider?: string;
  network?: { enabled?: boolean; ip?: string | null };
}

export async function listInstances(client: Client, query: { state?: string } = {}): Promise<InstanceSummary[]> {
  const instances = await client.json<unknown>('/instances', { query });
  if (!Array.isArray(instances)) throw new Error('GET /instances did not answer an array');
  return instances as InstanceSummary[];
}

export function instanceTable(instances: readonly InstanceSummary[]): string {
  return formatTable(
    ['ID', 'NAME', 'PROVIDER', 'STATE', 'IP', 'IMAGE'],
    instances.map((i) => [i.id, i.name, i.provider ?? '-', i.state, i.network?.ip ?? '-', i.image]),
  );
}

export async function removeInstance(client: Client, id: string): Promise<void> {
  const response = await client.request(`/instances/${segment(id)}`, { method: 'DELETE', headers: { accept: '*/*' } });
  await response.body?.cancel();
}

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  source?: string;
}

const SOURCES = ['app', 'vmm', 'hypeman'];

export function logsQuery(flags: LogsFlags): Record<string, string | number | boolean> {
  const query: Record<string, string | number | boolean> = {};
  if (flags.tail !== undefined) {
    if (!/^[0-9]+$/.test(flags.tail))
      throw new UsageError(`--tail must be a number of lines, not ${JSON.stringify(flags.tail)}`);
    query.tail = Number(flags.tail);
  }
  if (flags.follow) query.follow = true;
  if (flags.source !== undefined) {
    if (!SOURCES.includes(flags.source))
      throw new UsageError(`--source must be app, vmm or hypeman, not ${JSON.stringify(flags.source)}`);
    query.source = flags.source;
  }
  return query;
}

/**
 * Prints the log lines. hypeman sends each line as `data: <JSON string>`; data that is not a JSON
 * string (a server of another make) is printed as it came rather than dropped.
 */
export async function streamLogs(
  client: Client,
  id: string,
  flags: LogsFlags,
  out: { write(s: string): unknown },
  signal?: AbortSignal,
): Promise<void> {
  const query = logsQuery(flags);
  const opts: Parameters<Client['request']>[1] = { query, headers: { accept: 'text/event-stream' } };
  if (signal) opts.signal = signal;
  const response = await client.request(`/instances/${segment(id)}/logs`, opts);
  if (!response.body) return;
  for await (const event of readEvents(response.body)) {
    let line: string = event.data;
    try {
      const parsed: unknown = JSON.parse(event.data);
      if (typeof parsed === 'string') line = parsed;
    } catch {
      // Not JSON: shown as sent.
    }
    out.write(line.endsWith('\n') ? line : `${line}\n`);
  }
}
