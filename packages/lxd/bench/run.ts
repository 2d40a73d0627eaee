/**
 * Benchmark (not a test): @vmplane/lxd against the `lxc` CLI (the Go client) and pylxd, side by
 * side on the same daemon in one run. See README.md next to this file.
 *
 *   npm run bench:lxd [-- --reps 3 --cycles 10 --execs 100 --list 30 --lists 10 --mib 64 --transfers 3
 *                        --sizes 4k,64k,1m,16m,64m,256m --files-only]
 */

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { LxdClient } from '@vmplane/lxd';
import { arg } from '../../../tools/bench.js';
import { removeLeftoverLogs } from '../test/support/lxd.js';
import { type Cli, startCli } from './cli.js';
import { type Pylxd, startPylxd } from './pylxd.js';
import { fmtMs, median, type Row, ratio, renderTable, renderTransferTable, type TransferRow } from './table.js';
import { describe, type Exchange, startTimingProxy, type TimingProxy, wireSpan } from './timing-proxy.js';
import {
  emptySamples,
  parseSizes,
  preparePayload,
  type SizeSamples,
  sizeLabel,
  type TransferContext,
  transfer,
  transfersFor,
} from './transfers.js';

const REPS = arg('reps', 3);
const CYCLES = arg('cycles', 10);
const EXECS = arg('execs', 100);
const LIST_SIZE = arg('list', 30);
const LISTS = arg('lists', 10);
const MIB = arg('mib', 64);
const TRANSFERS = arg('transfers', 3);
/** `--files-only`: only the push and pull rows (quick iterations on transfers). */
const FILES_ONLY = process.argv.includes('--files-only');
/**
 * The smallest size with an "lxc net" (end to end minus its time outside the transfer, from two
 * runs): below it, how lxc's ~25-45 ms start-up varies between runs is more than the transfer.
 */
const NET_FROM = 16 << 20;
const started = performance.now();
/** Sizes of the push/pull rows (`--sizes 4k,64k,1m,16m,64m,256m`); --mib's size is measured in (5). */
const SIZES = parseSizes(process.argv[process.argv.indexOf('--sizes') + 1]);
const ALIAS = process.env.VMPLANE_IMAGE_ALIAS ?? 'vmplane-busybox';
const COMMAND = ['true'];
/** Output-loss check: rounds of this many execs at once, each printing to stdout and stderr. */
const LOSS_WIDTH = arg('loss-width', 12);
const LOSS_ROUNDS = arg('loss-rounds', 10);

/** Everything this run creates is named `${RUN}-...`; cleanup removes exactly those. */
const RUN = `vmpb-${randomBytes(3).toString('hex')}`;
const WORK = `${RUN}-work`;

type ClientName = 'ours' | 'lxc' | 'pylxd';
const CLIENTS: readonly ClientName[] = ['ours', 'lxc', 'pylxd'];
/** The clients' order in repetition r: rotated, so no client always goes first (or last). */
const order = (r: number): ClientName[] => CLIENTS.map((_, i) => CLIENTS[(i + r) % CLIENTS.length] as ClientName);

/** The machine's load, printed with the tables: other work shares its 2 cores. */
const uptime = async () => (await promisify(execFile)('uptime')).stdout;

const log = (msg: string) =>
  process.stderr.write(`[bench] ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s  ${msg}\n`);

const lxd = await LxdClient.connect();
let cli: Cli | undefined;
let py: Pylxd | undefined;
let proxy: TimingProxy | undefined;
/** Our client through the timing proxy, for the proxy-timed transfers. */
let lxdProxied: LxdClient | undefined;
let tmp: string | undefined;

// ---- cleanup: always, once, even on Ctrl-C ------------------------------------------------------

let cleaning: Promise<void> | undefined;
/** Set on Ctrl-C: the measuring loop stops before its next operation. */
let aborting = false;
const stopIfAborting = () => {
  if (aborting) throw new Error('interrupted');
};

async function deleteMine(): Promise<number> {
  // Only this run's names: nothing else on the daemon is ever touched.
  const mine = (await lxd.instances.names()).filter((n) => n.startsWith(`${RUN}-`));
  if (mine.length) log(`cleanup: deleting ${mine.length} instance(s) named ${RUN}-*`);
  for (const name of mine) {
    try {
      await lxd.instances.delete(name, { force: true });
    } catch (error) {
      if ((error as { status?: number }).status !== 404) log(`cleanup of ${name} failed: ${String(error)}`);
    }
  }
  return mine.length;
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    aborting = true;
    const killed = (cli?.killAll() ?? 0) + (py?.kill() ? 1 : 0);
    lxdProxied?.close();
    try {
      // A killed `lxc launch` or pylxd create leaves its operation running in the daemon: the
      // instance may appear after a first look. Look again until a round finds nothing.
      if (killed) await sleep(1_000);
      for (let round = 0; round < 5; round++) {
        if ((await deleteMine()) === 0 && (round > 0 || !killed)) break;
        await sleep(1_000);
      }
    } catch (error) {
      log(`cleanup failed: ${String(error)}`);
    }
    // LXD 5.0.2 keeps a deleted container's log directory; this run's go with its containers.
    removeLeftoverLogs((entry) => entry.startsWith(`${RUN}-`));
    proxy?.kill();
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
    lxd.close();
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---- the measured operations, one function per client and row ----------------------------------

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/**
 * lxc's time on the wire for one process, seen by the timing proxy: from the first byte of its
 * first request after its start-up (the `GET /1.0` every command begins with) to the last byte
 * of its last exchange (of a websocket or SFTP tunnel: its last byte either way).
 */
function afterStartup(exchanges: readonly Exchange[]): number {
  const first = exchanges.findIndex((x) => !(x.method === 'GET' && x.target === '/1.0'));
  return first < 0 ? Number.NaN : wireSpan(exchanges.slice(first));
}

/** Requests each lxc command sent through the proxy, `METHOD path` (names replaced) joined. */
const lxcRequests = new Map<string, Map<string, number>>();

/**
 * One `lxc` command through the timing proxy: its whole process (end to end, which then includes
 * the proxy's own small cost per exchange) and its time on the wire after start-up.
 */
async function lxcTimed(args: readonly string[]) {
  await proxy!.take();
  const r = await cli!.run(args, { LXD_DIR: proxy!.dir });
  const exchanges = await proxy!.take();
  const key = args[0] === 'file' ? `file ${args[1]}` : (args[0] as string);
  const seq = exchanges.map(describe).join(', ');
  const seen = lxcRequests.get(key) ?? new Map<string, number>();
  seen.set(seq, (seen.get(seq) ?? 0) + 1);
  lxcRequests.set(key, seen);
  return { ...r, wire: afterStartup(exchanges) };
}

/** lxc's wire time per sample of each main row, next to its end-to-end time in `samples`. */
const lxcWire = { cycle: [] as number[], exec: [] as number[], list: [] as number[] };

async function cycle(client: ClientName, name: string): Promise<number> {
  switch (client) {
    case 'ours':
      return timed(async () => {
        await (await lxd.instances.createFromImage(name, { alias: ALIAS })).wait();
        await lxd.instances.start(name);
        await lxd.instances.delete(name, { force: true });
      });
    case 'lxc': {
      // The CLI's own way: `lxc launch` (create + start) then `lxc delete --force` (stop + delete).
      const a = await lxcTimed(['launch', ALIAS, name, '--quiet']);
      const b = await lxcTimed(['delete', '--force', name]);
      lxcWire.cycle.push(a.wire + b.wire);
      return a.ms + b.ms;
    }
    case 'pylxd':
      return (await py!.call<{ ms: number }>({ op: 'cycle', name, alias: ALIAS })).ms;
  }
}

/** Our buffered exec as it comes (recorded output), or over websockets. */
const viaOf = (client: 'ours' | 'ours-websockets') => (client === 'ours' ? {} : { via: 'websockets' as const });

async function exec(client: ClientName | 'ours-websockets'): Promise<number> {
  switch (client) {
    case 'ours':
    case 'ours-websockets': {
      const t0 = performance.now();
      const r = await lxd.instances.exec(WORK, {
        command: COMMAND,
        ...viaOf(client),
      });
      const ms = performance.now() - t0;
      if (r.exitCode !== 0) throw new Error(`exec exit code ${r.exitCode}`);
      return ms;
    }
    case 'lxc': {
      const r = await lxcTimed(['exec', WORK, '--', ...COMMAND]);
      lxcWire.exec.push(r.wire);
      return r.ms;
    }
    case 'pylxd': {
      const r = await py!.call<{ samples: number[]; failures: string[] }>({
        op: 'execs',
        name: WORK,
        count: 1,
        command: COMMAND,
      });
      pylxdExecFailures.push(...r.failures);
      return r.samples[0] as number;
    }
  }
}

/** How many of LOSS_ROUNDS x LOSS_WIDTH concurrent execs came back without their exact output. */
async function outputLoss(client: ClientName | 'ours-websockets'): Promise<number> {
  const expect = (tag: string, out: string, err: string) => out !== `out-${tag}\n` || err !== `err-${tag}\n`;
  const command = (tag: string) => ['sh', '-c', `echo out-${tag}; echo err-${tag} >&2`];
  if (client === 'pylxd') {
    const r = await py!.call<{ lost: number }>({
      op: 'execs_parallel',
      name: WORK,
      width: LOSS_WIDTH,
      rounds: LOSS_ROUNDS,
    });
    return r.lost;
  }
  let lost = 0;
  for (let round = 0; round < LOSS_ROUNDS; round++) {
    stopIfAborting();
    const tags = Array.from({ length: LOSS_WIDTH }, (_, i) => `${round}-${i}`);
    const results = await Promise.all(
      tags.map(async (tag) => {
        if (client === 'lxc') {
          const r = await cli!.run(['exec', WORK, '--', ...command(tag)]);
          return expect(tag, r.stdout, r.stderr);
        }
        const r = await lxd.instances.exec(WORK, {
          command: command(tag),
          ...viaOf(client),
        });
        return expect(tag, r.stdout.toString(), r.stderr.toString());
      }),
    );
    lost += results.filter(Boolean).length;
  }
  return lost;
}

interface ListSample {
  ms: number;
  count: number;
}

async function list(client: ClientName | 'pylxd-idiomatic'): Promise<ListSample> {
  switch (client) {
    case 'ours': {
      const t0 = performance.now();
      const all = await lxd.instances.listFull();
      return { ms: performance.now() - t0, count: all.length };
    }
    case 'lxc': {
      const r = await lxcTimed(['list', '--format', 'json']);
      lxcWire.list.push(r.wire);
      return { ms: r.ms, count: (JSON.parse(r.stdout) as unknown[]).length };
    }
    case 'pylxd':
      return py!.call<ListSample>({ op: 'list_raw' });
    case 'pylxd-idiomatic':
      return py!.call<ListSample>({ op: 'list_idiomatic' });
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * At --mib, what only some clients can do: pull into a local file (ours: `pullToFile`, over SFTP),
 * and ours over explicit SFTP sessions (push from the file, as lxc does, and read into memory).
 * The file is pushed first, not timed (the push and pull rows come from the size loop); every
 * copy's sha256 must match. Hashing and reading the local copies are not timed.
 */
async function fileAndSftp(
  client: ClientName,
  payload: Buffer,
  payloadFile: string,
  digest: string,
): Promise<{ pullFile: number; pushSftp?: number; pullSftp?: number }> {
  const remote = `/tmp/${RUN}-${client}.bin`;
  const local = join(tmp!, `${client}-pulled.bin`);
  const check = (what: string, got: string) => {
    if (got !== digest) throw new Error(`${client} ${what}: sha256 ${got} differs from the pushed ${digest}`);
  };
  let pullFile: number;
  let pushSftp: number | undefined;
  let pullSftp: number | undefined;
  switch (client) {
    case 'ours': {
      await lxd.instances.files.push(WORK, remote, payload);
      pullFile = await timed(async () => {
        await lxd.instances.files.pullToFile(WORK, remote, local);
      });
      pushSftp = await timed(() => lxd.instances.files.pushFromFile(WORK, payloadFile, remote));
      let viaSftp: Buffer = Buffer.alloc(0);
      pullSftp = await timed(async () => {
        const session = await lxd.instances.files.sftp(WORK);
        try {
          viaSftp = await session.readFile(remote);
        } finally {
          session.close();
        }
      });
      check('pull over SFTP', sha256(viaSftp));
      break;
    }
    case 'lxc': {
      await cli!.run(['file', 'push', payloadFile, `${WORK}${remote}`]);
      pullFile = (await cli!.run(['file', 'pull', `${WORK}${remote}`, local])).ms;
      break;
    }
    case 'pylxd': {
      await py!.call<{ ms: number }>({ op: 'push', name: WORK, path: remote });
      pullFile = (await py!.call<{ ms: number }>({ op: 'pull_file', name: WORK, path: remote, file: local })).ms;
      break;
    }
  }
  check('pull to a file', sha256(await readFile(local)));
  await rm(local, { force: true });
  await lxd.instances.files.delete(WORK, remote);
  return {
    pullFile,
    ...(pushSftp === undefined ? {} : { pushSftp }),
    ...(pullSftp === undefined ? {} : { pullSftp }),
  };
}

// ---- the run -----------------------------------------------------------------------------------

type Samples = Record<ClientName, number[]>;
const samples = (): Samples => ({ ours: [], lxc: [], pylxd: [] });

const cycleEach = samples();
const cycleTotal = samples();
const execEach = samples();
const execTotal = samples();
const execWebsockets: number[] = [];
const lossOf: Record<ClientName | 'ours-websockets', number> = { ours: 0, 'ours-websockets': 0, lxc: 0, pylxd: 0 };
const listMs = samples();
const listIdiomatic: number[] = [];
const listCounts = new Set<number>();
/** lxc's wire time after start-up, totalled per repetition, for the "total of" rows. */
const lxcWireTotal = { cycle: [] as number[], exec: [] as number[] };
const pullFileMs = samples();
const pushSftpMs: number[] = [];
const pullSftpMs: number[] = [];
/** Every size of the push and pull rows: --sizes and --mib's. */
const ALL_SIZES = [...new Set([...SIZES, MIB * 1024 * 1024])].sort((a, b) => a - b);
const bySize = new Map<number, SizeSamples>(ALL_SIZES.map((size) => [size, emptySamples()]));
/** pylxd's own exec errors, retried (see pylxd_bench.py). */
const pylxdExecFailures: string[] = [];
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

let failed = false;
try {
  tmp = await mkdtemp(join(tmpdir(), `${RUN}-`));
  cli = await startCli();
  py = await startPylxd(new URL('./pylxd_bench.py', import.meta.url).pathname);
  proxy = await startTimingProxy(tmp);
  lxdProxied = await LxdClient.connect({ socketPath: proxy.socketPath });
  const server = lxd.serverInfo?.environment;
  log(`run ${RUN}: LXD ${server?.server_version ?? '?'} (${server?.storage ?? '?'} storage), pylxd ${py.version}`);
  log(`${REPS} repetitions; clients interleaved, order rotated each repetition`);

  const payload = randomBytes(MIB * 1024 * 1024);
  const digest = sha256(payload);
  const payloadFile = join(tmp, 'payload.bin');
  await writeFile(payloadFile, payload);

  const listSize = FILES_ONLY ? 0 : LIST_SIZE;
  log(`setup: ${WORK} (running, for exec and files) and ${listSize} stopped containers for the list`);
  await (await lxd.instances.createFromImage(WORK, { alias: ALIAS })).wait();
  await lxd.instances.start(WORK);
  await py.call({ op: 'proxy', socket: proxy.socketPath, name: WORK });
  const listed = Array.from({ length: listSize }, (_, i) => `${RUN}-l${String(i).padStart(2, '0')}`);
  for (let i = 0; i < listed.length; i += 3) {
    stopIfAborting();
    await Promise.all(
      listed.slice(i, i + 3).map(async (n) => (await lxd.instances.createFromImage(n, { alias: ALIAS })).wait()),
    );
  }

  // Warm-up, not measured: first connections, first websocket, the CLI's binary in the page cache.
  for (const c of CLIENTS) {
    await exec(c);
    await list(c);
  }
  await list('pylxd-idiomatic');
  for (let i = 0; i < 3; i++) await cli.run(['version']);
  {
    // The first transfers after a start are slower (the daemon's first file access to the instance).
    const ctx: TransferContext = { lxd, lxdProxied, proxy, cli, py, work: WORK, run: RUN, tmp };
    const data = await preparePayload(ctx, 64 * 1024);
    for (const c of CLIENTS) await transfer(ctx, c, data, emptySamples());
    await data.dispose();
  }
  lxcWire.exec.length = 0;
  lxcWire.list.length = 0;
  lxcRequests.clear();

  for (let r = 0; r < REPS; r++) {
    const clients = order(r);
    log(`repetition ${r + 1}/${REPS}: order ${clients.join(', ')}`);

    if (!FILES_ONLY) {
      // (1) create + start + delete, one container at a time, clients interleaved per container.
      log(`  create+start+delete x${CYCLES}`);
      const cyc = samples();
      const wireFrom = lxcWire.cycle.length;
      for (let i = 0; i < CYCLES; i++) {
        for (const c of clients) {
          stopIfAborting();
          cyc[c].push(await cycle(c, `${RUN}-${c[0]}${r}-${i}`));
        }
      }
      for (const c of CLIENTS) {
        cycleEach[c].push(...cyc[c]);
        cycleTotal[c].push(sum(cyc[c]));
      }
      lxcWireTotal.cycle.push(sum(lxcWire.cycle.slice(wireFrom)));

      // (2) 100 sequential execs per client, as a block (clients in rotating order). Interleaving
      // single calls would charge each client for the daemon still tearing down the previous
      // client's session (pylxd leaves its websockets to close lazily).
      log(`  exec x${EXECS}`);
      const ex = samples();
      const execFrom = lxcWire.exec.length;
      for (const c of clients) {
        for (let i = 0; i < EXECS; i++) {
          stopIfAborting();
          ex[c].push(await exec(c));
        }
        if (c !== 'ours') continue;
        for (let i = 0; i < EXECS; i++) {
          stopIfAborting();
          execWebsockets.push(await exec('ours-websockets'));
        }
      }
      for (const c of CLIENTS) {
        execEach[c].push(...ex[c]);
        execTotal[c].push(sum(ex[c]));
      }
      lxcWireTotal.exec.push(sum(lxcWire.exec.slice(execFrom)));

      // (3) list with recursion=2.
      log(`  list x${LISTS}`);
      for (let i = 0; i < LISTS; i++) {
        stopIfAborting();
        for (const c of clients) {
          const s = await list(c);
          listMs[c].push(s.ms);
          listCounts.add(s.count);
        }
        const s = await list('pylxd-idiomatic');
        listIdiomatic.push(s.ms);
        listCounts.add(s.count);
      }

      // (4) output kept by concurrent execs of commands that end at once.
      log(`  exec output check: ${LOSS_ROUNDS} x ${LOSS_WIDTH} at once`);
      for (const c of [...clients, 'ours-websockets' as const]) lossOf[c] += await outputLoss(c);
    }

    // (5) push and pull at every size, each payload random and sha256-checked: end to end, then
    // through the timing proxy.
    const ctx: TransferContext = { lxd, lxdProxied, proxy, cli, py, work: WORK, run: RUN, tmp };
    for (const size of ALL_SIZES) {
      const count = transfersFor(size, TRANSFERS);
      log(`  push+pull ${sizeLabel(size)} x${count}`);
      const data =
        size === payload.length
          ? { payload, file: payloadFile, digest, dispose: async () => {} }
          : await preparePayload(ctx, size);
      if (size === payload.length) await py.call({ op: 'load', file: payloadFile });
      const into = bySize.get(size) as SizeSamples;
      try {
        for (let i = 0; i < count; i++) {
          for (const c of clients) {
            stopIfAborting();
            await transfer(ctx, c, data, into);
          }
        }
      } finally {
        await data.dispose();
      }
    }

    // (6) at --mib: into a local file, and ours over explicit SFTP sessions.
    const extras = 1;
    log(`  ${MIB} MiB into a local file, and over SFTP sessions x${extras}`);
    await py.call({ op: 'load', file: payloadFile });
    for (let i = 0; i < extras; i++) {
      stopIfAborting();
      for (const c of clients) {
        const s = await fileAndSftp(c, payload, payloadFile, digest);
        pullFileMs[c].push(s.pullFile);
        if (s.pushSftp !== undefined) pushSftpMs.push(s.pushSftp);
        if (s.pullSftp !== undefined) pullSftpMs.push(s.pullSftp);
      }
    }
  }

  const up = (await uptime()).trim();
  const header =
    `@vmplane/lxd vs lxc ${cli.version} vs pylxd ${py.version} — LXD ${server?.server_version ?? '?'}, ` +
    `medians of ${REPS} repetitions (ms); uptime after the run: ${up}`;
  console.log();
  console.log(header);
  const slowerPy: string[] = [];
  const slowerCli: string[] = [];
  if (!FILES_ONLY) {
    const rows: Row[] = [];
    const row = (label: string, data: Samples, wire: readonly number[], pylxdOverride?: number[]) => {
      rows.push({
        label,
        ours: median(data.ours),
        lxc: median(data.lxc),
        lxcWire: median(wire),
        pylxd: median(pylxdOverride ?? data.pylxd),
      });
    };
    const counts = [...listCounts].sort((a, b) => a - b).join('/');
    row('create+start+delete, per container', cycleEach, lxcWire.cycle);
    row(`create+start+delete, total of ${CYCLES}`, cycleTotal, lxcWireTotal.cycle);
    row(`exec ${COMMAND.join(' ')}, per call`, execEach, lxcWire.exec);
    row(`exec ${COMMAND.join(' ')}, total of ${EXECS}`, execTotal, lxcWireTotal.exec);
    rows.push({ ...(rows.at(-2) as Row), label: '  same per call, ours via websockets', ours: median(execWebsockets) });
    row(`list recursion=2 (${counts} instances)`, listMs, lxcWire.list);
    row('  same, pylxd idiomatic (all()+sync+state)', listMs, lxcWire.list, listIdiomatic);
    console.log(renderTable(rows));
    console.log();
    for (const x of rows) {
      if (ratio(x.ours, x.pylxd) >= 1) slowerPy.push(x.label.trim());
      if (!x.label.includes('total') && !x.label.startsWith(' ') && ratio(x.ours, x.lxcWire) >= 1)
        slowerCli.push(x.label.trim());
    }
  }

  const trows: TransferRow[] = [];
  const requestNotes: string[] = [];
  const perOp = (seen: Map<string, number>) =>
    [...new Set([...seen.keys()].map((k) => (k === '' ? 0 : k.split(', ').length)))].join('|');
  for (const dir of ['push', 'pull'] as const) {
    for (const size of ALL_SIZES) {
      const at = bySize.get(size) as SizeSamples;
      const label = `${dir} ${sizeLabel(size)}${dir === 'pull' ? ' into memory' : ''}`;
      trows.push({
        label,
        ours: median(at.e2e[dir].ours),
        lxc: median(at.e2e[dir].lxc),
        pylxd: median(at.e2e[dir].pylxd),
        oursWire: median(at.wire[dir].ours),
        lxcWire: median(at.wire[dir].lxc),
        pylxdWire: median(at.wire[dir].pylxd),
        // Below NET_FROM the start-up's noise between two lxc runs is larger than the transfer.
        lxcNet: size >= NET_FROM ? median(at.e2e[dir].lxc) - median(at.outside[dir].lxc) : Number.NaN,
        requests: CLIENTS.map((c) => perOp(at.requests[dir][c])).join('/'),
      });
      for (const c of CLIENTS) {
        for (const [seq, n] of at.requests[dir][c]) requestNotes.push(`${label}, ${c} (${n}x): ${seq}`);
      }
      const each = (f: (c: ClientName) => number) => CLIENTS.map((c) => `${c} ${fmtMs(f(c))}`).join(', ');
      requestNotes.push(
        `${label}: outside the transfer ${each((c) => median(at.outside[dir][c]))} ms; ` +
          `the proxy's own cost (end to end through it minus straight) ${each(
            (c) => median(at.viaProxy[dir][c]) - median(at.e2e[dir][c]),
          )} ms`,
      );
      const last = trows.at(-1) as TransferRow;
      if (ratio(last.ours, last.pylxd) >= 1) slowerPy.push(label);
      // Slower than lxc's transfer: our whole call against lxc's time on the wire or its net time.
      if (ratio(last.ours, Math.min(last.lxcWire, last.lxcNet)) >= 1) slowerCli.push(label);
      if (size !== MIB * 1024 * 1024) continue;
      const extra = {
        oursWire: Number.NaN,
        lxcWire: Number.NaN,
        pylxdWire: Number.NaN,
        lxcNet: Number.NaN,
        requests: '',
      };
      if (dir === 'push')
        trows.push({ ...last, ...extra, label: '  same, ours from the file over SFTP', ours: median(pushSftpMs) });
      else {
        trows.push({ ...last, ...extra, label: '  same, ours over an SFTP session', ours: median(pullSftpMs) });
        trows.push({
          label: `pull ${MIB} MiB into a local file (ours: SFTP)`,
          ours: median(pullFileMs.ours),
          lxc: median(pullFileMs.lxc),
          pylxd: median(pullFileMs.pylxd),
          ...extra,
        });
      }
    }
  }
  console.log(
    'Push and pull. ours, lxc, pylxd: end to end, straight to LXD. wire: through the timing proxy, first byte of ' +
      'the files request to the last byte of its answer (ours from 1 MiB push / 6 MiB pull: and its SFTP session). ' +
      'lxc net: lxc end to end minus what it spent outside the transfer. req/op: ours/lxc/pylxd, through the proxy.',
  );
  console.log(renderTransferTable(trows));
  console.log();
  for (const note of requestNotes) console.log(`  ${note}`);
  for (const [cmd, seen] of lxcRequests) {
    for (const [seq, n] of seen) console.log(`  lxc ${cmd} (${n}x): ${seq}`);
  }
  console.log();
  if (!FILES_ONLY) {
    const checked = REPS * LOSS_ROUNDS * LOSS_WIDTH;
    console.log(
      `exec output lost (stdout or stderr not exactly what the command printed), of ${checked} commands ` +
        `run ${LOSS_WIDTH} at once: ours ${lossOf.ours}, ours via websockets ${lossOf['ours-websockets']}, ` +
        `lxc ${lossOf.lxc}, pylxd ${lossOf.pylxd}`,
    );
  }
  if (pylxdExecFailures.length) {
    console.log(
      `Note: pylxd's execute() failed ${pylxdExecFailures.length} time(s) on its own (` +
        `${[...new Set(pylxdExecFailures)].join('; ')}); each was retried and only the successful attempt timed.`,
    );
  }
  console.log(
    `Summary: vs pylxd ${slowerPy.length === 0 ? 'faster on every row' : `slower on: ${slowerPy.join('; ')}`}; ` +
      `vs lxc on the wire after its start-up ${
        slowerCli.length === 0 ? 'at least as fast on every operation' : `slower on: ${slowerCli.join('; ')}`
      }. (${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
} catch (error) {
  failed = true;
  if (!aborting) log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
