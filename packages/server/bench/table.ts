import { fmtMs, fmtRatio, ratio, renderColumns } from '../../../tools/bench.js';

export { fmtMs, median, percentile, ratio } from '../../../tools/bench.js';

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

function fmtValue(v: number, unit: Row['unit']): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'ms') return fmtMs(v);
  if (unit === 'count') return String(v);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['measure', 'n', 'vmplane', 'direct', 'vmplane/direct', 'unit', 'note'];
  return renderColumns(
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
    { noteLast: true },
  );
}
