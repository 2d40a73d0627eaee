/**
 * What every `npm run bench:*` shares: its numeric flags, the statistics, and the plain-text table.
 * Each package's bench/table.ts says only which columns its table has.
 */

/** `--name N`: a positive integer flag, or `fallback`. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : Number.NaN;
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

/** The middle sample, or the mean of the middle two; NaN for no samples. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100), the median at 50; NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  if (p === 50) return median(xs);
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

/** ours / theirs: below 1 means ours is faster. */
export function ratio(ours: number, theirs: number): number {
  return theirs > 0 ? ours / theirs : Number.POSITIVE_INFINITY;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

export const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');

/**
 * Columns padded to their widest cell under a dashed rule: the first left-aligned, numbers
 * right-aligned; with `noteLast`, the last column is free text, left-aligned and unpadded.
 */
export function renderColumns(
  head: readonly string[],
  body: readonly (readonly string[])[],
  opts: { noteLast?: boolean } = {},
): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const last = head.length - 1;
  const cell = (c: string, i: number) => {
    if (i === 0) return c.padEnd(widths[i] as number);
    if (opts.noteLast && i === last) return c;
    return c.padStart(widths[i] as number);
  };
  const line = (cells: readonly string[]) => {
    const text = cells.map(cell).join('  ');
    return opts.noteLast ? text.trimEnd() : text;
  };
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
