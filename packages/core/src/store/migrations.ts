import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import { CoreError } from '../errors.js';

/**
 * The schema's history, in code: the built `dist/` has no migration files to find, and an
 * unreadable directory must never look like "nothing to migrate". Names sort in the order they
 * run; a migration, once released, is never edited (add the next one instead).
 *
 * Only portable DDL: text, integer and double precision columns, primary keys, unique indexes and
 * foreign keys. No autoincrement (SQLite and PostgreSQL spell it differently): ids that must be
 * numbers come from the `counters` table.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('state_error', 'text')
        .addColumn('size', 'text')
        .addColumn('vcpus', 'integer')
        .addColumn('env', 'text', (c) => c.notNull())
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('network', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('started_at', 'text')
        .addColumn('stopped_at', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('exit_message', 'text')
        .addColumn('has_snapshot', 'integer')
        .addColumn('hypervisor', 'text')
        .addColumn('current_phase', 'text')
        .addColumn('current_phase_since', 'text')
        .addColumn('phase_durations_ms', 'text')
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('ref_key', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('instances_name').unique().on('instances').column('name').execute();
      // One record per guest: a second would make findByRef (events, reconcile) a coin toss.
      await db.schema
        .createIndex('instances_provider_ref')
        .unique()
        .on('instances')
        .columns(['provider', 'ref_key'])
        .execute();

      await db.schema
        .createTable('operations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        // No foreign key: an operation's history outlives the instance it deleted.
        .addColumn('instance_id', 'text')
        .addColumn('provider', 'text')
        .addColumn('request', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('result', 'text')
        .addColumn('cancel_requested', 'integer', (c) => c.notNull())
        .addColumn('last_seq', 'integer', (c) => c.notNull())
        .addColumn('undo_seq', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .execute();
      await db.schema.createIndex('operations_status').on('operations').column('status').execute();
      await db.schema.createIndex('operations_instance').on('operations').column('instance_id').execute();
      await db.schema.createIndex('operations_created').on('operations').columns(['created_at', 'id']).execute();

      await db.schema
        .createTable('operation_events')
        .addColumn('operation_id', 'text', (c) => c.notNull().references('operations.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('elapsed', 'double precision')
        .addColumn('vm_id', 'integer')
        .addColumn('ip', 'text')
        .addColumn('at', 'text', (c) => c.notNull())
        // The counter on operations numbers events; this key is what makes a duplicate impossible.
        .addPrimaryKeyConstraint('operation_events_pk', ['operation_id', 'seq'])
        .execute();

      await db.schema
        .createTable('allocations')
        .addColumn('pool', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        // The guarantee itself: no check-then-insert race, in one process or many, can give a
        // value to two owners.
        .addPrimaryKeyConstraint('allocations_pk', ['pool', 'value'])
        .execute();
      await db.schema.createIndex('allocations_owner').on('allocations').column('owner').execute();

      await db.schema
        .createTable('undo_intents')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('operation_id', 'text', (c) => c.notNull().references('operations.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('undo_intents_operation_seq')
        .unique()
        .on('undo_intents')
        .columns(['operation_id', 'seq'])
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('api_tokens_name').unique().on('api_tokens').column('name').execute();
      await db.schema.createIndex('api_tokens_hash').unique().on('api_tokens').column('hash').execute();

      await db.schema
        .createTable('idempotency_keys')
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('body_hash', 'text', (c) => c.notNull())
        // No foreign key: the key is claimed before the operation is recorded.
        .addColumn('operation_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
        .execute();

      await db.schema
        .createTable('counters')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'integer', (c) => c.notNull())
        .execute();
      await (db as Kysely<{ counters: { name: string; value: number } }>)
        .insertInto('counters')
        .values({ name: 'undo_intent', value: 0 })
        .execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => ({ ...MIGRATIONS }) };

/** The migration table's name: prefixed so it cannot collide with a table of someone else's. */
export const MIGRATION_TABLE = 'vmplane_migrations';

/** The database could not be brought to this version's schema; nothing after the failure ran. */
export class StoreMigrationError extends CoreError {
  override name = 'StoreMigrationError';
  readonly code = 'internal';
  readonly status = 500;
}

/**
 * Runs what has not run yet, each migration in a transaction. A database that has run a
 * migration this code does not know (a newer vmplane wrote it) is refused rather than used.
 */
export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: `${MIGRATION_TABLE}_lock`,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const why = error instanceof Error ? error.message : String(error);
    throw new StoreMigrationError({
      message: failed ? `store migration ${failed} failed: ${why}` : `store migration failed: ${why}`,
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
