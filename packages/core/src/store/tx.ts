import type { Kysely, Transaction } from 'kysely';
import { CoreError } from '../errors.js';
import type { StoreSchema } from './schema.js';

export type Trx = Transaction<StoreSchema>;

/** The store was closed; nothing was done. */
export class StoreClosedError extends CoreError {
  override name = 'StoreClosedError';
  readonly code = 'internal';
  readonly status = 500;
}

/**
 * A unique or primary key refused a row. The codes of each database Kysely may run on are listed
 * here and nowhere else: better-sqlite3's extended result codes and PostgreSQL's SQLSTATE 23505.
 */
export function isUniqueViolation(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

/** PostgreSQL's serialization failure and deadlock: the transaction may simply run again. */
function isRetryable(error: unknown): boolean {
  const code = errorCode(error);
  return code === '40001' || code === '40P01';
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

const ATTEMPTS = 5;

/**
 * How each store runs its one transaction per method. Writes that check and then insert (the
 * next free value, the next seq) are correct under SQLite's single writer as they are; under
 * PostgreSQL's read committed two of them can pass the check together, and the unique index
 * refuses the second, which then runs again and sees the first's row.
 */
export class Tx {
  readonly #db: Kysely<StoreSchema>;
  readonly #now: () => Date;
  #closed = false;

  constructor(db: Kysely<StoreSchema>, now: () => Date) {
    this.#db = db;
    this.#now = now;
  }

  now(): string {
    return this.#now().toISOString();
  }

  markClosed(): void {
    this.#closed = true;
  }

  async read<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    this.#check();
    return await this.#db.transaction().setAccessMode('read only').execute(fn);
  }

  async write<T>(fn: (trx: Trx) => Promise<T>, opts: { retryOnUnique?: boolean } = {}): Promise<T> {
    this.#check();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#db.transaction().execute(fn);
      } catch (error) {
        const again = isRetryable(error) || (opts.retryOnUnique === true && isUniqueViolation(error));
        if (!again || attempt >= ATTEMPTS) throw error;
      }
    }
  }

  #check(): void {
    if (this.#closed) throw new StoreClosedError({ message: 'the store is closed' });
  }
}
