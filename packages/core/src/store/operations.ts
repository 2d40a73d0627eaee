import type { Selectable } from 'kysely';
import type { OperationEvent, StageStatus } from '../engine/stage.js';
import { AlreadyExistsError, InvalidRequestError, NotFoundInStoreError } from '../errors.js';
import { checkObject, checkText, fromJson, fromJsonOrUndefined, setOptional, toJson, ulid } from './codec.js';
import type { NewEvent, OperationChange, OperationRecord, OperationStatus, OperationStore } from './contract.js';
import type { EventRow, OperationRow } from './schema.js';
import { isUniqueViolation, type Trx, type Tx } from './tx.js';

const STATUSES: readonly OperationStatus[] = ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'];
const STAGE_STATUSES: readonly StageStatus[] = ['processing', 'success', 'error', 'info'];
const UNFINISHED: OperationStatus[] = ['pending', 'running'];

/**
 * Operations and their journal. Ids are ULIDs unless the caller brings one (the engine claims an
 * idempotency key before the operation exists, so it picks the id first).
 */
export class SqlOperationStore implements OperationStore {
  readonly #tx: Tx;

  constructor(tx: Tx) {
    this.#tx = tx;
  }

  async create(op: Parameters<OperationStore['create']>[0]): Promise<OperationRecord> {
    const now = this.#tx.now();
    const row: OperationRow = {
      id: op.id === undefined ? ulid(Date.parse(now)) : checkText(op.id, 'id', 128),
      kind: checkText(op.kind, 'kind', 64),
      status: 'pending',
      instance_id: op.instanceId ?? null,
      provider: op.provider ?? null,
      request: toJson(checkObject(op.request, 'request'), 'request'),
      error: null,
      result: null,
      cancel_requested: 0,
      last_seq: 0,
      undo_seq: 0,
      created_at: now,
      updated_at: now,
      ended_at: null,
    };
    return this.#tx.write(async (trx) => {
      try {
        await trx.insertInto('operations').values(row).execute();
      } catch (error) {
        if (isUniqueViolation(error))
          throw new AlreadyExistsError({ message: `an operation with id ${JSON.stringify(row.id)} exists already` });
        throw error;
      }
      return fromRow(row);
    });
  }

  get(id: string): Promise<OperationRecord | undefined> {
    return this.#tx.read((trx) => getOp(trx, id));
  }

  /** Newest first. */
  async list(
    filter: { status?: OperationStatus; instanceId?: string; limit?: number } = {},
  ): Promise<OperationRecord[]> {
    const { limit } = filter;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1))
      throw new InvalidRequestError({ message: 'limit must be a positive integer', field: 'limit' });
    return this.#tx.read(async (trx) => {
      let q = trx.selectFrom('operations').selectAll();
      if (filter.status !== undefined) q = q.where('status', '=', filter.status);
      if (filter.instanceId !== undefined) q = q.where('instance_id', '=', filter.instanceId);
      q = q.orderBy('created_at', 'desc').orderBy('id', 'desc');
      if (limit !== undefined) q = q.limit(limit);
      return (await q.execute()).map(fromRow);
    });
  }

  /** Oldest first: recovery undoes in the order the work began. */
  unfinished(): Promise<OperationRecord[]> {
    return this.#tx.read(async (trx) => {
      const rows = await trx
        .selectFrom('operations')
        .selectAll()
        .where('status', 'in', UNFINISHED)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(fromRow);
    });
  }

  async update(id: string, change: OperationChange): Promise<OperationRecord | undefined> {
    const set: Partial<OperationRow> = { updated_at: this.#tx.now() };
    if (change.status !== undefined) {
      if (!STATUSES.includes(change.status))
        throw new InvalidRequestError({ message: `${JSON.stringify(change.status)} is not an operation status` });
      set.status = change.status;
    }
    // A key present with `undefined` clears the column; an absent key leaves it.
    if ('instanceId' in change) set.instance_id = change.instanceId ?? null;
    if ('provider' in change) set.provider = change.provider ?? null;
    if ('endedAt' in change) set.ended_at = change.endedAt ?? null;
    if ('error' in change) set.error = change.error === undefined ? null : toJson(change.error, 'error');
    if ('result' in change)
      set.result = change.result === undefined ? null : toJson(checkObject(change.result, 'result'), 'result');
    return this.#tx.write(async (trx) => {
      await trx.updateTable('operations').set(set).where('id', '=', id).execute();
      return getOp(trx, id);
    });
  }

  requestCancel(id: string): Promise<OperationRecord | undefined> {
    return this.#tx.write(async (trx) => {
      await trx
        .updateTable('operations')
        .set({ cancel_requested: 1, updated_at: this.#tx.now() })
        .where('id', '=', id)
        .execute();
      return getOp(trx, id);
    });
  }

  async appendEvent(operationId: string, event: NewEvent): Promise<OperationEvent> {
    if (!STAGE_STATUSES.includes(event.status))
      throw new InvalidRequestError({ message: `${JSON.stringify(event.status)} is not an event status` });
    return this.#tx.write(async (trx) => {
      // Bumping the counter takes the row's write lock (PostgreSQL) or the database's (SQLite), so
      // two appenders can never read the same last seq.
      const bumped = await trx
        .updateTable('operations')
        .set((eb) => ({ last_seq: eb('last_seq', '+', 1) }))
        .where('id', '=', operationId)
        .returning('last_seq')
        .executeTakeFirst();
      if (!bumped) throw new NotFoundInStoreError({ what: 'operation', key: operationId });
      const row: EventRow = {
        operation_id: operationId,
        seq: bumped.last_seq,
        step: event.step,
        status: event.status,
        message: event.message,
        elapsed: event.elapsed ?? null,
        vm_id: event.vmId ?? null,
        ip: event.ip ?? null,
        at: this.#tx.now(),
      };
      await trx.insertInto('operation_events').values(row).execute();
      return eventFromRow(row);
    });
  }

  events(operationId: string, afterSeq = 0): Promise<OperationEvent[]> {
    return this.#tx.read(async (trx) => {
      const rows = await trx
        .selectFrom('operation_events')
        .selectAll()
        .where('operation_id', '=', operationId)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .execute();
      return rows.map(eventFromRow);
    });
  }
}

async function getOp(trx: Trx, id: string): Promise<OperationRecord | undefined> {
  const row = await trx.selectFrom('operations').selectAll().where('id', '=', id).executeTakeFirst();
  return row && fromRow(row);
}

function fromRow(r: Selectable<OperationRow>): OperationRecord {
  const op: OperationRecord = {
    id: r.id,
    kind: r.kind,
    status: r.status as OperationStatus,
    request: fromJson<Record<string, unknown>>(r.request),
    cancelRequested: r.cancel_requested === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
  setOptional(op, 'instanceId', r.instance_id);
  setOptional(op, 'provider', r.provider);
  setOptional(op, 'error', fromJsonOrUndefined<{ code: string; message: string }>(r.error));
  setOptional(op, 'result', fromJsonOrUndefined<Record<string, unknown>>(r.result));
  setOptional(op, 'endedAt', r.ended_at);
  return op;
}

function eventFromRow(r: Selectable<EventRow>): OperationEvent {
  const e: OperationEvent = {
    seq: r.seq,
    operationId: r.operation_id,
    step: r.step,
    status: r.status as StageStatus,
    message: r.message,
    at: r.at,
  };
  setOptional(e, 'elapsed', r.elapsed);
  setOptional(e, 'vmId', r.vm_id);
  setOptional(e, 'ip', r.ip);
  return e;
}
