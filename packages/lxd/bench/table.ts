export interface Row {
  label: string;
  ours: number;
  /** The whole `lxc` process(es), through the timing proxy. */
  lxc: number;
  /** The same on the wire after each process's start-up (its first `GET /1.0`), proxy-timed. */
  lxcWire: number;
  pylxd: number;
}

/** A push or pull row: end to end straight to LXD, and proxy-timed on the wire. */
export interface TransferRow {
  label: string;
  ours: number;
  lxc: number;
  pylxd: number;
  oursWire: number;
  lxcWire: number;
  pylxdWire: number;
  /** lxc end to end straight to LXD, minus the time it spent outside the transfer (proxy-timed). */
  lxcNet: number;
  /** Requests per operation, `ours/lxc/pylxd` (`a|b` when it varied). */
  requests: string;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** ours / theirs: below 1 means we are faster. */
export function ratio(ours: number, theirs: number): number {
  return theirs > 0 ? ours / theirs : Number.POSITIVE_INFINITY;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

const fmtRatio = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');

function render(head: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['operation', 'ours', 'lxc', 'lxc wire', 'pylxd', 'ours/lxc', 'ours/lxc wire', 'ours/pylxd'];
  return render(
    head,
    rows.map((r) => [
      r.label,
      fmtMs(r.ours),
      fmtMs(r.lxc),
      fmtMs(r.lxcWire),
      fmtMs(r.pylxd),
      fmtRatio(ratio(r.ours, r.lxc)),
      fmtRatio(ratio(r.ours, r.lxcWire)),
      fmtRatio(ratio(r.ours, r.pylxd)),
    ]),
  );
}

export function renderTransferTable(rows: readonly TransferRow[]): string {
  const head = [
    'operation',
    'ours',
    'lxc',
    'pylxd',
    'ours wire',
    'lxc wire',
    'pylxd wire',
    'lxc net',
    'ours/lxc wire',
    'ours/lxc net',
    'wire ours/lxc',
    'ours/pylxd',
    'req/op',
  ];
  return render(
    head,
    rows.map((r) => [
      r.label,
      fmtMs(r.ours),
      fmtMs(r.lxc),
      fmtMs(r.pylxd),
      fmtMs(r.oursWire),
      fmtMs(r.lxcWire),
      fmtMs(r.pylxdWire),
      fmtMs(r.lxcNet),
      fmtRatio(ratio(r.ours, r.lxcWire)),
      fmtRatio(ratio(r.ours, r.lxcNet)),
      fmtRatio(ratio(r.oursWire, r.lxcWire)),
      fmtRatio(ratio(r.ours, r.pylxd)),
      r.requests,
    ]),
  );
}
