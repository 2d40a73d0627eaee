export interface Row {
  label: string;
  ours: number;
  /** The whole `lxc` process(es). */
  lxc: number;
  /** The same minus the CLI's start-up, once per process the row runs. */
  lxcNet: number;
  pylxd: number;
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

export function renderTable(rows: readonly Row[]): string {
  const head = ['operation', 'ours', 'lxc', 'lxc -startup', 'pylxd', 'ours/lxc', 'ours/lxc-startup', 'ours/pylxd'];
  const body = rows.map((r) => [
    r.label,
    fmtMs(r.ours),
    fmtMs(r.lxc),
    fmtMs(r.lxcNet),
    fmtMs(r.pylxd),
    fmtRatio(ratio(r.ours, r.lxc)),
    fmtRatio(ratio(r.ours, r.lxcNet)),
    fmtRatio(ratio(r.ours, r.pylxd)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
