/**
 * Benchmark (not a test): @vmplane/lxd against the `lxc` CLI (the Go client) and pylxd, side by
 * side on the same daemon in one run. See README.md next to this file.
 *
 *   npm run bench:lxd [-- --reps 3 --cycles 10 --execs 100 --list 30 --lists 10 --mib 64 --transfers 3]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LxdClient } from '@vmplane/lxd';
import { removeLeftoverLogs } from '../test/support/lxd.js';
import { type Cli, startCli, startupProbe } from './cli.js';
import { type Pylxd, startPylxd } from './pylxd.js';
import { fmtMs, median, type Row, ratio, renderTable } from './table.js';
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

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : Number.NaN;
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

const REPS = arg('reps', 3);
const CYCLES = arg('cycles', 10);
const EXECS = arg('execs', 100);
const LIST_SIZE = arg('list', 30);
const LISTS = arg('lists', 10);
const MIB = arg('mib', 64);
const TRANSFERS = arg('transfers', 3);
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

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

const lxd = await LxdClient.connect();
let cli: Cli | undefined;
let py: Pylxd | undefined;
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
      const a = await cli!.run(['launch', ALIAS, name, '--quiet']);
      const b = await cli!.run(['delete', '--force', name]);
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
    case 'lxc':
      return (await cli!.run(['exec', WORK, '--', ...COMMAND])).ms;
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
      const r = await cli!.run(['list', '--format', 'json']);
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
 * Push, then pull into memory, then pull into a local file; every copy's sha256 must match. Hashing
 * and reading the local copies are not timed. `lxc` can only pull into a file: that one sample
 * serves both pull rows.
 */
async function pushPull(
  client: ClientName,
  payload: Buffer,
  payloadFile: string,
  digest: string,
): Promise<{ push: number; pull: number; pullFile: number; pushSftp?: number; pullSftp?: number }> {
  const remote = `/tmp/${RUN}-${client}.bin`;
  const local = join(tmp!, `${client}-pulled.bin`);
  const check = (what: string, got: string) => {
    if (got !== digest) throw new Error(`${client} ${what}: sha256 ${got} differs from the pushed ${digest}`);
  };
  let push: number;
  let pull: number;
  let pullFile: number;
  let pushSftp: number | undefined;
  let pullSftp: number | undefined;
  switch (client) {
    case 'ours': {
      push = await timed(() => lxd.instances.files.push(WORK, remote, payload));
      const t0 = performance.now();
      const f = await lxd.instances.files.pull(WORK, remote);
      pull = performance.now() - t0;
      if (f.type !== 'file') throw new Error(`pulled a ${f.type}`);
      check('pull', sha256(f.content));
      pullFile = await timed(async () => {
        await lxd.instances.files.pullToFile(WORK, remote, local);
      });
      // The same over SFTP: push from the file (as lxc does), pull into memory, each with its own session.
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
      push = (await cli!.run(['file', 'push', payloadFile, `${WORK}${remote}`])).ms;
      pull = pullFile = (await cli!.run(['file', 'pull', `${WORK}${remote}`, local])).ms;
      break;
    }
    case 'pylxd': {
      push = (await py!.call<{ ms: number }>({ op: 'push', name: WORK, path: remote })).ms;
      const r = await py!.call<{ ms: number; sha256: string }>({ op: 'pull', name: WORK, path: remote });
      pull = r.ms;
      check('pull', r.sha256);
      pullFile = (await py!.call<{ ms: number }>({ op: 'pull_file', name: WORK, path: remote, file: local })).ms;
      break;
    }
  }
  check('pull to a file', sha256(await readFile(local)));
  await rm(local, { force: true });
  await lxd.instances.files.delete(WORK, remote);
  return {
    push,
    pull,
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
const pushMs = samples();
const pullMs = samples();
const pullFileMs = samples();
const pushSftpMs: number[] = [];
const pullSftpMs: number[] = [];
const bySize = new Map<number, SizeSamples>(SIZES.map((size) => [size, emptySamples()]));
const startup: number[] = [];
/** pylxd's own exec errors, retried (see pylxd_bench.py). */
const pylxdExecFailures: string[] = [];

const started = performance.now();
let failed = false;
try {
  tmp = await mkdtemp(join(tmpdir(), `${RUN}-`));
  cli = await startCli();
  py = await startPylxd(new URL('./pylxd_bench.py', import.meta.url).pathname);
  const server = lxd.serverInfo?.environment;
  log(`run ${RUN}: LXD ${server?.server_version ?? '?'} (${server?.storage ?? '?'} storage), pylxd ${py.version}`);
  log(`${REPS} repetitions; clients interleaved, order rotated each repetition`);

  const payload = randomBytes(MIB * 1024 * 1024);
  const digest = sha256(payload);
  const payloadFile = join(tmp, 'payload.bin');
  await writeFile(payloadFile, payload);
  await py.call({ op: 'load', file: payloadFile });

  log(`setup: ${WORK} (running, for exec and files) and ${LIST_SIZE} stopped containers for the list`);
  await (await lxd.instances.createFromImage(WORK, { alias: ALIAS })).wait();
  await lxd.instances.start(WORK);
  const listed = Array.from({ length: LIST_SIZE }, (_, i) => `${RUN}-l${String(i).padStart(2, '0')}`);
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

  for (let r = 0; r < REPS; r++) {
    const clients = order(r);
    log(`repetition ${r + 1}/${REPS}: order ${clients.join(', ')}`);

    // The CLI's start-up: a trivial call that reaches the daemon, sampled in every repetition.
    for (let i = 0; i < 5; i++) startup.push(await startupProbe(cli, () => lxd.server.get()));

    // (1) create + start + delete, one container at a time, clients interleaved per container.
    log(`  create+start+delete x${CYCLES}`);
    const cyc = samples();
    for (let i = 0; i < CYCLES; i++) {
      for (const c of clients) {
        stopIfAborting();
        cyc[c].push(await cycle(c, `${RUN}-${c[0]}${r}-${i}`));
      }
    }
    for (const c of CLIENTS) {
      cycleEach[c].push(...cyc[c]);
      cycleTotal[c].push(cyc[c].reduce((a, b) => a + b, 0));
    }

    // (2) 100 sequential execs per client, as a block (clients in rotating order). Interleaving
    // single calls would charge each client for the daemon still tearing down the previous
    // client's session (pylxd leaves its websockets to close lazily).
    log(`  exec x${EXECS}`);
    const ex = samples();
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
      execTotal[c].push(ex[c].reduce((a, b) => a + b, 0));
    }

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

    // (5) push and pull of the payload, sha256-checked.
    log(`  push+pull ${MIB} MiB x${TRANSFERS}`);
    for (let i = 0; i < TRANSFERS; i++) {
      stopIfAborting();
      for (const c of clients) {
        const s = await pushPull(c, payload, payloadFile, digest);
        pushMs[c].push(s.push);
        pullMs[c].push(s.pull);
        pullFileMs[c].push(s.pullFile);
        if (s.pushSftp !== undefined) pushSftpMs.push(s.pushSftp);
        if (s.pullSftp !== undefined) pullSftpMs.push(s.pullSftp);
      }
    }

    // (6) push and pull at every other size, each payload random and sha256-checked.
    const ctx: TransferContext = { lxd, cli, py, work: WORK, run: RUN, tmp };
    for (const size of SIZES) {
      if (size === MIB * 1024 * 1024) continue;
      const count = transfersFor(size, TRANSFERS);
      log(`  push+pull ${sizeLabel(size)} x${count}`);
      const data = await preparePayload(ctx, size);
      const into = bySize.get(size) as SizeSamples;
      try {
        for (let i = 0; i < count; i++) {
          for (const c of clients) {
            stopIfAborting();
            const s = await transfer(ctx, c, data);
            into.push[c].push(s.push);
            into.pull[c].push(s.pull);
          }
        }
      } finally {
        await data.dispose();
      }
    }
    // (5)'s payload is pylxd's again for the next repetition.
    await py.call({ op: 'load', file: payloadFile });
  }

  const up = median(startup);
  const rows: Row[] = [];
  const row = (label: string, data: Samples, processes: number, pylxdOverride?: number[]) => {
    const lxcMs = median(data.lxc);
    rows.push({
      label,
      ours: median(data.ours),
      lxc: lxcMs,
      lxcNet: lxcMs - processes * up,
      pylxd: median(pylxdOverride ?? data.pylxd),
    });
  };
  const counts = [...listCounts].sort((a, b) => a - b).join('/');
  row('create+start+delete, per container', cycleEach, 2);
  row(`create+start+delete, total of ${CYCLES}`, cycleTotal, 2 * CYCLES);
  row(`exec ${COMMAND.join(' ')}, per call`, execEach, 1);
  row(`exec ${COMMAND.join(' ')}, total of ${EXECS}`, execTotal, EXECS);
  rows.push({ ...(rows.at(-2) as Row), label: '  same per call, ours via websockets', ours: median(execWebsockets) });
  row(`list recursion=2 (${counts} instances)`, listMs, 1);
  row('  same, pylxd idiomatic (all()+sync+state)', listMs, 1, listIdiomatic);
  const sizes = [...new Set([...SIZES, MIB * 1024 * 1024])].sort((a, b) => a - b);
  const atSize = (size: number) => (size === MIB * 1024 * 1024 ? { push: pushMs, pull: pullMs } : bySize.get(size));
  for (const size of sizes) {
    row(`push ${sizeLabel(size)}`, (atSize(size) as SizeSamples).push, 1);
    if (size !== MIB * 1024 * 1024) continue;
    rows.push({ ...(rows.at(-1) as Row), label: '  same, ours from the file over SFTP', ours: median(pushSftpMs) });
  }
  for (const size of sizes) {
    row(`pull ${sizeLabel(size)} into memory`, (atSize(size) as SizeSamples).pull, 1);
    if (size !== MIB * 1024 * 1024) continue;
    rows.push({ ...(rows.at(-1) as Row), label: '  same, ours over an SFTP session', ours: median(pullSftpMs) });
  }
  row(`pull ${MIB} MiB into a local file (ours: SFTP)`, pullFileMs, 1);

  console.log();
  console.log(
    `@vmplane/lxd vs lxc ${cli.version} vs pylxd ${py.version} — LXD ${server?.server_version ?? '?'}, ` +
      `medians of ${REPS} repetitions (ms); lxc start-up = median \`lxc version\` - GET /1.0 = ${fmtMs(up)} ms`,
  );
  console.log(renderTable(rows));
  console.log();
  const slowerPy = rows.filter((x) => ratio(x.ours, x.pylxd) >= 1).map((x) => x.label.trim());
  const perOp = rows.filter((x) => !x.label.includes('total') && !x.label.startsWith(' '));
  const slowerCli = perOp.filter((x) => ratio(x.ours, x.lxcNet) >= 1).map((x) => x.label.trim());
  const checked = REPS * LOSS_ROUNDS * LOSS_WIDTH;
  console.log(
    `exec output lost (stdout or stderr not exactly what the command printed), of ${checked} commands ` +
      `run ${LOSS_WIDTH} at once: ours ${lossOf.ours}, ours via websockets ${lossOf['ours-websockets']}, ` +
      `lxc ${lossOf.lxc}, pylxd ${lossOf.pylxd}`,
  );
  if (pylxdExecFailures.length) {
    console.log(
      `Note: pylxd's execute() failed ${pylxdExecFailures.length} time(s) on its own (` +
        `${[...new Set(pylxdExecFailures)].join('; ')}); each was retried and only the successful attempt timed.`,
    );
  }
  console.log(
    `Summary: vs pylxd ${slowerPy.length === 0 ? 'faster on every row' : `slower on: ${slowerPy.join('; ')}`}; ` +
      `vs lxc per operation without its start-up ${
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
