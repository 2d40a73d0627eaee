/**
 * Benchmark (not a test): the fast cluster view against a plain sequential walk like the seed's
 * GetClusterStatus + EnrichVMs, on a simulated cluster of 3 nodes and 300 guests at 5 ms latency.
 *
 *   npm run bench:proxmox [-- --runs 5 --guests 300 --latency 5 --concurrency 8]
 */
import { path } from '@vmplane/common';
import {
  type ClusterResource,
  type ClusterStatusEntry,
  ProxmoxClient,
  parseGuestConfig,
  type RawConfig,
} from '@vmplane/proxmox';
import { startSimulator } from '@vmplane/proxmox-sim';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : Number.NaN;
  return Number.isFinite(v) ? v : fallback;
}

const runs = arg('runs', 5);
const guests = arg('guests', 300);
const latency = arg('latency', 5);
const concurrency = arg('concurrency', 8);

interface Sample {
  firstMs: number;
  fullMs: number;
  requests: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const sim = await startSimulator({ nodes: 3, guests, latency: 0 });
try {
  const client = new ProxmoxClient({
    baseUrl: sim.url,
    username: sim.credentials.username,
    password: sim.credentials.password,
  });
  await client.nodes.list(); // log in outside the measurement
  sim.faults.latency = latency;

  async function measure(fn: () => Promise<{ first: number }>): Promise<Sample> {
    client.clearCache();
    const before = sim.requests.total;
    const start = performance.now();
    const { first } = await fn();
    return { firstMs: first - start, fullMs: performance.now() - start, requests: sim.requests.total - before };
  }

  const fast = () =>
    measure(async () => {
      const view = await client.cluster.view({ concurrency, fresh: true });
      const first = performance.now();
      await view.enriched;
      return { first };
    });

  // The seed's walk: cluster status, each node's status in turn, cluster resources; then per guest
  // status/current, config and (running guests with an agent) the agent's interfaces, one by one.
  const t = client.transport;
  const sequential = () =>
    measure(async () => {
      const status = await t.get<ClusterStatusEntry[]>('/cluster/status');
      for (const n of status.filter((e) => e.type === 'node' && e.online)) await t.get(path`/nodes/${n.name}/status`);
      const resources = await t.get<ClusterResource[]>('/cluster/resources');
      const first = performance.now();
      for (const g of resources.filter((r) => r.type === 'qemu' || r.type === 'lxc')) {
        const base = `${path`/nodes/${g.node ?? ''}`}/${g.type}${path`/${g.vmid ?? 0}`}`;
        const current = await t.get<{ status: string }>(`${base}/status/current`);
        const config = parseGuestConfig(g.type === 'lxc' ? 'lxc' : 'qemu', await t.get<RawConfig>(`${base}/config`));
        if (current.status === 'running') {
          try {
            if (g.type === 'qemu' && config.agentEnabled) await t.get(`${base}/agent/network-get-interfaces`);
            if (g.type === 'lxc') await t.get(`${base}/interfaces`);
          } catch {
            // as the seed: an agent that does not answer is skipped
          }
        }
      }
      return { first };
    });

  const ours: Sample[] = [];
  const seed: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternate so drift in the machine's load hits both sides alike.
    ours.push(await fast());
    seed.push(await sequential());
    process.stderr.write('.');
  }
  process.stderr.write('\n');

  const row = (name: string, xs: Sample[]) => ({
    name,
    first: median(xs.map((x) => x.firstMs)),
    full: median(xs.map((x) => x.fullMs)),
    requests: median(xs.map((x) => x.requests)),
  });
  const a = row(`fast view (concurrency ${concurrency})`, ours);
  const b = row('sequential walk (seed)', seed);
  const fmt = (n: number) => n.toFixed(0).padStart(10);
  const ratio = (x: number, y: number) => `${(x / y).toFixed(1)}x`.padStart(10);
  console.log(`\n3 nodes, ${guests} guests, ${latency} ms latency, medians of ${runs} runs\n`);
  console.log(`| ${'approach'.padEnd(28)} | first view ms | full view ms |   requests |`);
  console.log(`| ${'-'.repeat(28)} | ------------: | -----------: | ---------: |`);
  for (const r of [a, b])
    console.log(
      `| ${r.name.padEnd(28)} | ${fmt(r.first).padStart(13)} | ${fmt(r.full).padStart(12)} | ${fmt(r.requests)} |`,
    );
  console.log(
    `| ${'seed / ours'.padEnd(28)} | ${ratio(b.first, a.first).padStart(13)} | ${ratio(b.full, a.full).padStart(12)} | ${ratio(b.requests, a.requests)} |`,
  );
  client.close();
} finally {
  await sim.close();
}
