/** The simulator's notion of time. Tests advance it to expire tickets or finish tasks. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** A clock that follows real time plus an offset tests can move forward. */
export class SimClock implements Clock {
  private offset = 0;
  private readonly base: () => number;
  private readonly listeners = new Set<() => void>();

  constructor(base: (() => number) | Clock = Date.now) {
    this.base = typeof base === 'function' ? base : () => base.now();
  }

  now(): number {
    return this.base() + this.offset;
  }

  /** Moves time forward by `ms` (e.g. `clock.advance(2 * 3600_000)` to expire tickets). */
  advance(ms: number): void {
    this.offset += ms;
    for (const l of this.listeners) l();
  }

  /** Called after every `advance` (the simulator finishes due tasks). */
  onAdvance(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
