/** One line of the table: a measure, its sample count, vmplane's value and, where there is one, the direct one. */
export interface Row {
  label: string;
  /** Samples behind the value (`10`, `50`, `100x36`). */
  n: string;
  value: number;
  unit: 'ms' | 'req/s' | 'installs/s' | 'count';
  /** The same done straight against the backend, without the server (only the LXD row has one). */
  direct?: number;
  note?: string;
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100); NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  if (p === 50) {
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
  }
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

/** ours / theirs: below 1 means the API is faster than going direct. */
export function ratio(ours: number, theirs: number): number {
  return theirs > 0 ? ours / theirs : Number.POSITIVE_INFINITY;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

function fmtValue(v: number, unit: Row['unit']): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'ms') return fmtMs(v);
  if (unit === 'count') return String(v);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

const fmtRatio = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');

function render(head: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const last = head.length - 1;
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) =>
        i === 0 || i === last ? c.padEnd(i === last ? 0 : (widths[i] as number)) : c.padStart(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['measure', 'n', 'vmplane', 'direct', 'vmplane/direct', 'unit', 'note'];
  return render(
    head,
    rows.map((r) => [
      r.label,
      r.n,
      fmtValue(r.value, r.unit),
      r.direct === undefined ? '' : fmtValue(r.direct, r.unit),
      r.direct === undefined ? '' : fmtRatio(ratio(r.value, r.direct)),
      r.unit,
      r.note ?? '',
    ]),
  );
}
