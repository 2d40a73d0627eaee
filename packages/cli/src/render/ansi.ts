/** The few ANSI sequences the renderers use, and colour only where it is wanted (NO_COLOR, a TTY). */

export interface Palette {
  green(s: string): string;
  red(s: string): string;
  cyan(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;

export const colours: Palette = {
  green: wrap(32, 39),
  red: wrap(31, 39),
  cyan: wrap(36, 39),
  dim: wrap(2, 22),
  bold: wrap(1, 22),
};

const same = (s: string) => s;
export const noColours: Palette = { green: same, red: same, cyan: same, dim: same, bold: same };

/** https://no-color.org: any non-empty NO_COLOR turns colour off. */
export function paletteFor(isTty: boolean, env: NodeJS.ProcessEnv = process.env): Palette {
  return isTty && !(env.NO_COLOR && env.NO_COLOR !== '') && env.TERM !== 'dumb' ? colours : noColours;
}

export const CLEAR_LINE = '\r\x1b[2K';
export const HIDE_CURSOR = '\x1b[?25l';
export const SHOW_CURSOR = '\x1b[?25h';

/** Cuts plain text to `width` columns, so that a redrawn line never wraps (which would break `\r`). */
export function truncate(text: string, width: number): string {
  const chars = [...text];
  if (width <= 0 || chars.length <= width) return text;
  return `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}
