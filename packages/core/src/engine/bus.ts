import type { Instance } from '../model/instance.js';
import type { OperationRecord } from '../store/contract.js';
import type { OperationEvent } from './stage.js';

/**
 * What the process tells its live readers (SSE streams, `/wait`, the CLI's follow): every journal
 * event, operation change and instance change, in the order they were stored. The journal is the
 * record; the bus only saves readers a poll. A reader that falls behind reads the journal again.
 */
export type BusMessage =
  | { type: 'operation-event'; event: OperationEvent }
  | { type: 'operation'; operation: OperationRecord }
  | { type: 'instance'; instance: Instance }
  | { type: 'instance-deleted'; instance: Instance };

export type BusListener = (message: BusMessage) => void;

export class EventBus {
  readonly #listeners = new Set<BusListener>();

  /** Returns the unsubscribe function. A listener that throws is dropped, not allowed to stop others. */
  subscribe(listener: BusListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  publish(message: BusMessage): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(message);
      } catch {
        this.#listeners.delete(listener);
      }
    }
  }

  get size(): number {
    return this.#listeners.size;
  }
}
