import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryCompiler,
  SqliteAdapter,
  SqliteDriver,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type TransactionSettings,
} from 'kysely';

/**
 * Everything SQLite-specific lives here, in the dialect: pragmas, how a write transaction begins,
 * and one lock per file for the whole process. The queries never know which database they run on.
 */
export interface SqliteFileOptions {
  /** A path, or `':memory:'` for a private database that ends with the store. */
  file: string;
  /** How long a writer waits for another process's transaction before failing. */
  busyTimeoutMs: number;
}

/**
 * One FIFO lock per database file in this process. better-sqlite3 is synchronous: if two
 * connections of one process both held a transaction across an `await`, the second's busy wait
 * would block the very thread the first needs to commit, until the timeout. So every store on a
 * file takes this lock for each statement or transaction; between processes SQLite's own locking
 * and the busy timeout do the same job.
 */
class FileLock {
  users = 0;
  #tail: Promise<void> = Promise.resolve();

  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const previous = this.#tail;
    this.#tail = previous.then(() => next);
    await previous;
    return release;
  }
}

const locks = new Map<string, FileLock>();

function lockFor(key: string): FileLock {
  let lock = locks.get(key);
  if (!lock) {
    lock = new FileLock();
    locks.set(key, lock);
  }
  lock.users += 1;
  return lock;
}

function unuse(key: string, lock: FileLock): void {
  lock.users -= 1;
  if (lock.users === 0 && locks.get(key) === lock) locks.delete(key);
}

/** The same file reached by two spellings (a symlink, `./`) must share one lock. */
function lockKey(file: string): string {
  const dir = realpathSync(dirname(resolve(file)));
  return join(dir, basename(file));
}

class LockedSqliteDriver implements Driver {
  readonly #inner: SqliteDriver;
  readonly #db: Database.Database;
  readonly #lock: FileLock;
  readonly #key: string | undefined;
  #release: (() => void) | undefined;
  #destroyed = false;

  constructor(db: Database.Database, key: string | undefined) {
    this.#db = db;
    this.#inner = new SqliteDriver({ database: db });
    this.#key = key;
    this.#lock = key === undefined ? new FileLock() : lockFor(key);
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    // The inner driver's own mutex first: one connection per store, so a store never waits on
    // the file lock while holding it for nothing.
    const connection = await this.#inner.acquireConnection();
    this.#release = await this.#lock.acquire();
    return connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // A deferred transaction that reads and then writes can lose the write lock to another
    // process and fail with SQLITE_BUSY at once, without waiting: writers take it up front.
    const begin = settings.accessMode === 'read only' ? 'begin' : 'begin immediate';
    await connection.executeQuery(CompiledQuery.raw(begin));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.commitTransaction(connection);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // SQLite rolls some failures back by itself; a second rollback would hide the first error.
    if (this.#db.inTransaction) await this.#inner.rollbackTransaction(connection);
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#inner.savepoint(connection, name, compile);
  }

  rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.#inner.rollbackToSavepoint(connection, name, compile);
  }

  releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.#inner.releaseSavepoint(connection, name, compile);
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
    await this.#inner.releaseConnection();
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // Waits for the statement or transaction in flight, so close never cuts one in half.
    await this.#inner.acquireConnection();
    const release = await this.#lock.acquire();
    try {
      await this.#inner.destroy();
    } finally {
      release();
      if (this.#key !== undefined) unuse(this.#key, this.#lock);
    }
  }
}

/** Opens the file (creating it), sets the pragmas, and gives Kysely a dialect over it. */
export function sqliteFileDialect(opts: SqliteFileOptions): Dialect {
  const memory = opts.file === ':memory:';
  const db = new Database(opts.file, { timeout: opts.busyTimeoutMs });
  try {
    // WAL: readers never wait for the writer, and a reader in another process (the CLI) never
    // blocks the server's writes. A private in-memory database has no WAL and needs none.
    if (!memory) {
      db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives the
      // process being killed (what crash recovery needs), and only an OS crash or power loss may
      // lose the last ones. FULL made each journal event an fsync, the bulk of an install's time.
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs)}`);
  } catch (error) {
    db.close();
    throw error;
  }
  const driver = new LockedSqliteDriver(db, memory ? undefined : lockKey(opts.file));
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => driver,
    createIntrospector: (k) => new SqliteIntrospector(k),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
}
