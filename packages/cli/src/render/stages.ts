/**
 * Renders go-pve-qemu's stage stream (`{"step","status","message","vm_id","ip"}` events) for people.
 *
 * - Piped (or `--plain`): one line per event, nothing rewritten, so logs and `grep` see everything.
 * - In a terminal: one line per stage, redrawn in place with a spinner and the time spent in the
 *   stage while it runs, then left with ✔ or ✖ and the server's own message when it ends. A
 *   command's streamed output (indented lines) is printed above the live line and kept.
 *
 * The spinner is these few lines rather than `ora`: ora drives one line, while a stage stream is a
 * growing log with one live line at its foot and output lines printed between redraws, and ora
 * would bring half a dozen dependencies for the part we would use.
 */
import { CLEAR_LINE, HIDE_CURSOR, type Palette, paletteFor, SHOW_CURSOR, truncate } from './ansi.js';

export type StageStatus = 'processing' | 'success' | 'error' | 'info';

export interface StageEvent {
  step: string;
  status: StageStatus;
  message: string;
  vm_id?: number;
  ip?: string;
}

/** A writable terminal or pipe: process.stdout, or a fake in tests. */
export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface StageRenderer {
  event(event: StageEvent): void;
  /** A line of our own (reconnecting, cancelling), shown without disturbing the stages. */
  note(text: string): void;
  /** Stops the spinner and leaves the terminal as it was found. Idempotent. */
  finish(): void;
}

export interface RendererOptions {
  /** Forces plain lines even on a terminal. */
  plain?: boolean;
  /** The clock, in milliseconds; injectable so tests assert behaviour, not timings. */
  now?: () => number;
  /** Spinner frame interval in ms; 0 draws only on events (tests call `tick()` themselves). */
  interval?: number;
  palette?: Palette;
  /** Where plain mode writes notes (stderr), so that piped stdout carries the stages alone. */
  notes?: Output;
}

export function createStageRenderer(out: Output, opts: RendererOptions = {}): StageRenderer & { tick(): void } {
  if (opts.plain || !out.isTTY) {
    const plain = new PlainRenderer(out, opts.notes);
    return Object.assign(plain, { tick: () => undefined });
  }
  return new TtyRenderer(out, opts);
}

/** True for a command's output line, which go-pve-qemu indents by two spaces under its stage. */
export function isOutputLine(event: StageEvent): boolean {
  return event.status === 'processing' && event.message.startsWith('  ');
}

export class PlainRenderer implements StageRenderer {
  readonly #out: Output;
  readonly #notes: Output;
  constructor(out: Output, notes: Output = out) {
    this.#out = out;
    this.#notes = notes;
  }
  event(event: StageEvent): void {
    if (isOutputLine(event)) {
      this.#out.write(`${event.message}\n`);
      return;
    }
    this.#out.write(event.step === '' ? `${event.message}\n` : `[${event.step}] ${event.message}\n`);
  }
  note(text: string): void {
    this.#notes.write(`${text}\n`);
  }
  finish(): void {}
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

interface LiveStage {
  step: string;
  message: string;
  startedAt: number;
}

export class TtyRenderer implements StageRenderer {
  readonly #out: Output;
  readonly #now: () => number;
  readonly #palette: Palette;
  readonly #timer: ReturnType<typeof setInterval> | undefined;
  /** The stage whose line is live (drawn, not yet ended with a newline). */
  #live: LiveStage | undefined;
  #frame = 0;
  #finished = false;

  constructor(out: Output, opts: RendererOptions = {}) {
    this.#out = out;
    this.#now = opts.now ?? Date.now;
    this.#palette = opts.palette ?? paletteFor(true);
    const interval = opts.interval ?? 80;
    this.#out.write(HIDE_CURSOR);
    if (interval > 0) {
      this.#timer = setInterval(() => this.tick(), interval);
      // The spinner alone must not keep the process alive.
      this.#timer.unref?.();
    }
  }

  event(event: StageEvent): void {
    if (this.#finished) return;
    if (isOutputLine(event)) {
      this.#above(this.#palette.dim(truncate(event.message, this.#width())));
      return;
    }
    if (!this.#live || this.#live.step !== event.step) {
      // A new stage starts its own line; a previous one still live has moved on without saying
      // so: it keeps its last message and time, with a neutral mark instead of the spinner.
      if (this.#live) this.#out.write(`${CLEAR_LINE}${this.#line('superseded', this.#live)}\n`);
      this.#live = { step: event.step, message: event.message, startedAt: this.#now() };
    } else {
      this.#live.message = event.message;
    }
    if (event.status === 'processing') {
      this.#draw();
      return;
    }
    // success, error, info: the stage's line is final. Another event of the same step (the closing
    // `[*] VMID: ...` lines) starts a line of its own rather than overwriting this one.
    this.#out.write(`${CLEAR_LINE}${this.#line(event.status, this.#live)}\n`);
    this.#live = undefined;
  }

  note(text: string): void {
    if (this.#finished) {
      this.#out.write(`${text}\n`);
      return;
    }
    this.#above(this.#palette.cyan(truncate(text, this.#width())));
  }

  /** Advances the spinner and the elapsed time of the live stage. */
  tick(): void {
    if (this.#finished || !this.#live) return;
    this.#frame = (this.#frame + 1) % FRAMES.length;
    this.#draw();
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#live) this.#out.write(`${CLEAR_LINE}${this.#line('superseded', this.#live)}\n`);
    this.#live = undefined;
    this.#out.write(SHOW_CURSOR);
  }

  /** Prints a kept line above the live one, then redraws the live one below it. */
  #above(text: string): void {
    this.#out.write(`${CLEAR_LINE}${text}\n`);
    if (this.#live) this.#draw();
  }

  #draw(): void {
    if (this.#live) this.#out.write(`${CLEAR_LINE}${this.#line('processing', this.#live)}`);
  }

  #line(status: StageStatus | 'superseded', stage: LiveStage): string {
    const p = this.#palette;
    const icon =
      status === 'success'
        ? p.green('✔')
        : status === 'error'
          ? p.red('✖')
          : status === 'info'
            ? p.cyan('ℹ')
            : status === 'superseded'
              ? p.dim('•')
              : p.cyan(FRAMES[this.#frame] ?? '-');
    const elapsed =
      status === 'processing' || status === 'superseded' ? ` ${formatElapsed(this.#now() - stage.startedAt)}` : '';
    const head = stage.step === '' ? '' : `${stage.step}  `;
    // Two columns for the icon and its space; the elapsed time is kept whole at the end.
    const text = truncate(`${head}${stage.message}`, this.#width() - 2 - elapsed.length);
    const styled = stage.step === '' ? text : `${p.bold(text.slice(0, head.length))}${text.slice(head.length)}`;
    return `${icon} ${styled}${elapsed === '' ? '' : p.dim(elapsed)}`;
  }

  #width(): number {
    return this.#out.columns && this.#out.columns > 0 ? this.#out.columns : 80;
  }
}

/** `3.2s`, `1m05s`: the time spent in a stage so far. */
export function formatElapsed(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  return `${m}m${String(s).padStart(2, '0')}s`;
}
