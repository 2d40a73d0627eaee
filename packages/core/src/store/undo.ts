import type { Selectable } from 'kysely';
import { NotFoundInStoreError } from '../errors.js';
import { checkObject, checkText, fromJson, toJson } from './codec.js';
import type { UndoIntent, UndoStore } from './contract.js';
import type { UndoRow } from './schema.js';
import type { Tx } from './tx.js';

/**
 * The undo log. An intent is written before the step it undoes acts, so that after a crash the
 * next process finds it; `seq` orders an operation's intents, and undo runs them newest first.
 */
export class SqlUndoStore implements UndoStore {
  readonly #tx: Tx;

  constructor(tx: Tx) {
    this.#tx = tx;
  }

  async push(operationId: string, kind: string, payload: Record<string, unknown>): Promise<UndoIntent> {
    checkText(kind, 'kind', 128);
    const json = toJson(checkObject(payload, 'payload'), 'payload');
    return this.#tx.write(async (trx) => {
      const seq = await trx
        .updateTable('operations')
        .set((eb) => ({ undo_seq: eb('undo_seq', '+', 1) }))
        .where('id', '=', operationId)
        .returning('undo_seq')
        .executeTakeFirst();
      if (!seq) throw new NotFoundInStoreError({ what: 'operation', key: operationId });
      // A counter rather than the largest id plus one: an id removed is never handed out again, so
      // a stale handle can never touch another operation's intent.
      const id = await trx
        .updateTable('counters')
        .set((eb) => ({ value: eb('value', '+', 1) }))
        .where('name', '=', 'undo_intent')
        .returning('value')
        .executeTakeFirstOrThrow();
      const row: UndoRow = {
        id: id.value,
        operation_id: operationId,
        seq: seq.undo_seq,
        kind,
        payload: json,
        created_at: this.#tx.now(),
      };
      await trx.insertInto('undo_intents').values(row).execute();
      return fromRow(row);
    });
  }

  async update(id: number, payload: Record<string, unknown>): Promise<void> {
    const json = toJson(checkObject(payload, 'payload'), 'payload');
    await this.#tx.write(async (trx) => {
      const r = await trx.updateTable('undo_intents').set({ payload: json }).where('id', '=', id).executeTakeFirst();
      // The step still thinks it has something to undo: losing that silently would leak it.
      if (r.numUpdatedRows === 0n) throw new NotFoundInStoreError({ what: 'undo intent', key: String(id) });
    });
  }

  /** Removing what is gone already succeeds: undo and discard may both reach it. */
  async remove(id: number): Promise<void> {
    await this.#tx.write((trx) => trx.deleteFrom('undo_intents').where('id', '=', id).execute());
  }

  async pending(operationId: string): Promise<UndoIntent[]> {
    return this.#tx.read(async (trx) => {
      const rows = await trx
        .selectFrom('undo_intents')
        .selectAll()
        .where('operation_id', '=', operationId)
        .orderBy('seq', 'desc')
        .execute();
      return rows.map(fromRow);
    });
  }

  async clear(operationId: string): Promise<number> {
    return this.#tx.write(async (trx) => {
      const r = await trx.deleteFrom('undo_intents').where('operation_id', '=', operationId).executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }
}

function fromRow(r: Selectable<UndoRow>): UndoIntent {
  return {
    id: r.id,
    operationId: r.operation_id,
    seq: r.seq,
    kind: r.kind,
    payload: fromJson<Record<string, unknown>>(r.payload),
    createdAt: r.created_at,
  };
}
