import { fmtMs, fmtRatio, ratio, renderColumns } from '../../../tools/bench.js';

export { fmtMs, median, ratio } from '../../../tools/bench.js';

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

export function renderTable(rows: readonly Row[]): string {
  const head = ['operation', 'ours', 'lxc', 'lxc wire', 'pylxd', 'ours/lxc', 'ours/lxc wire', 'ours/pylxd'];
  return renderColumns(
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
  return renderColumns(
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
