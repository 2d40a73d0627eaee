import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Dialect, Kysely } from 'kysely';
import { InvalidRequestError } from '../errors.js';
import { SqlAllocationStore } from './allocations.js';
import type {
  AllocationStore,
  IdempotencyStore,
  InstanceStore,
  OperationStore,
  Store,
  TokenStore,
  UndoStore,
} from './contract.js';
import { SqlIdempotencyStore } from './idempotency.js';
import { SqlInstanceStore } from './instances.js';
import { migrateToLatest } from './migrations.js';
import { SqlOperationStore } from './operations.js';
import type { StoreSchema } from './schema.js';
import { sqliteFileDialect } from './sqlite.js';
import { SqlTokenStore } from './tokens.js';
import { Tx } from './tx.js';
import { SqlUndoStore } from './undo.js';

/** The database file's name inside the data directory. */
export const STORE_FILE = 'vmplane.db';

/** Five seconds: longer than any one of our transactions, short enough to report a stuck peer. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

interface Common {
  /** The clock for every timestamp the store writes (tests pin it). */
  now?: () => Date;
}

/** Where the store lives. */
export type OpenStoreOptions =
  /** `<dataDir>/vmplane.db`, the directory made when missing. */
  | (Common & { dataDir: string; busyTimeoutMs?: number })
  /** One SQLite file by path, or `':memory:'`: a private database that ends with the store (tests). */
  | (Common & { file: string; busyTimeoutMs?: number })
  /**
   * Any Kysely dialect (PostgreSQL next). The caller owns its settings; the queries are the same.
   * A SQLite dialect made this way lacks the per-file lock that `file` and `dataDir` add, so two
   * stores of one process must not share its file.
   */
  | (Common & { dialect: Dialect });

/**
 * The store over Kysely. Each method of each part is one transaction. `db` is there for tests and
 * tools that need to look at the tables themselves; code of vmplane goes through the parts.
 */
export class SqlStore implements Store {
  readonly db: Kysely<StoreSchema>;
  readonly instances: InstanceStore;
  readonly operations: OperationStore;
  readonly allocations: AllocationStore;
  readonly undo: UndoStore;
  readonly tokens: TokenStore;
  readonly idempotency: IdempotencyStore;
  readonly #tx: Tx;
  #closing: Promise<void> | undefined;

  /** Takes a Kysely that `openStore` has migrated; use `openStore` (or `SqlStore.open`). */
  constructor(db: Kysely<StoreSchema>, opts: Common = {}) {
    this.db = db;
    this.#tx = new Tx(db, opts.now ?? (() => new Date()));
    this.instances = new SqlInstanceStore(this.#tx);
    this.operations = new SqlOperationStore(this.#tx);
    this.allocations = new SqlAllocationStore(this.#tx);
    this.undo = new SqlUndoStore(this.#tx);
    this.tokens = new SqlTokenStore(this.#tx);
    this.idempotency = new SqlIdempotencyStore(this.#tx);
  }

  static open(opts: OpenStoreOptions): Promise<SqlStore> {
    return openStore(opts);
  }

  /**
   * Waits for the transaction in flight, then closes the database (SQLite checkpoints its WAL).
   * Later calls are refused with a `StoreClosedError`; closing twice is fine.
   */
  close(): Promise<void> {
    this.#tx.markClosed();
    this.#closing ??= this.db.destroy();
    return this.#closing;
  }
}

/** Opens the database, brings its schema up to date, and returns the store. */
export async function openStore(opts: OpenStoreOptions): Promise<SqlStore> {
  const db = new Kysely<StoreSchema>({ dialect: dialectFor(opts) });
  try {
    await migrateToLatest(db as unknown as Kysely<unknown>);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const common: Common = {};
  if (opts.now) common.now = opts.now;
  return new SqlStore(db, common);
}

function dialectFor(opts: OpenStoreOptions): Dialect {
  if ('dialect' in opts) return opts.dialect;
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0)
    throw new InvalidRequestError({ message: 'busyTimeoutMs must be a whole number of milliseconds, 0 or more' });
  if ('dataDir' in opts) {
    if (typeof opts.dataDir !== 'string' || opts.dataDir === '')
      throw new InvalidRequestError({ message: 'dataDir must be a directory path', field: 'dataDir' });
    mkdirSync(opts.dataDir, { recursive: true });
    return sqliteFileDialect({ file: join(opts.dataDir, STORE_FILE), busyTimeoutMs });
  }
  if (typeof opts.file !== 'string' || opts.file === '')
    throw new InvalidRequestError({ message: "file must be a path or ':memory:'", field: 'file' });
  return sqliteFileDialect({ file: opts.file, busyTimeoutMs });
}
