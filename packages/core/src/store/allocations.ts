import { InvalidRequestError } from '../errors.js';
import { checkText, replayable } from './codec.js';
import type { Allocation, AllocationKey, AllocationStore } from './contract.js';
import type { AllocationRow } from './schema.js';
import type { Trx, Tx } from './tx.js';

/**
 * Allocations: a value of a pool held by one owner. The primary key (pool, value) is what makes a
 * double allocation impossible; the checks before each insert only choose which value to take.
 * Every write retries on a unique violation, which is how a racing writer of another process
 * (PostgreSQL) makes this one look again and move on to the next free value.
 */
export class SqlAllocationStore implements AllocationStore {
  readonly #tx: Tx;

  constructor(tx: Tx) {
    this.#tx = tx;
  }

  async allocate(req: {
    pool: string;
    owner: string;
    candidates: Iterable<string>;
    taken?: ReadonlySet<string>;
  }): Promise<Allocation | undefined> {
    const pool = checkText(req.pool, 'pool');
    const owner = checkText(req.owner, 'owner');
    const candidates = replayable(req.candidates);
    return this.#tx.write(
      async (trx) => {
        const held = await heldIn(trx, pool);
        for (const value of candidates) {
          if (held.has(value) || req.taken?.has(value)) continue;
          const row: AllocationRow = { pool, value, owner, created_at: this.#tx.now() };
          await trx.insertInto('allocations').values(row).execute();
          return fromRow(row);
        }
        return undefined;
      },
      { retryOnUnique: true },
    );
  }

  async claim(req: { pool: string; owner: string; value: string; taken?: ReadonlySet<string> }): Promise<boolean> {
    if (req.taken?.has(req.value)) return false;
    return this.claimGroup({ owner: req.owner, values: [{ pool: req.pool, value: req.value }] });
  }

  async allocateGroup(req: {
    owner: string;
    candidates: Iterable<readonly AllocationKey[]>;
  }): Promise<Allocation[] | undefined> {
    const owner = checkText(req.owner, 'owner');
    const candidates = replayable(req.candidates);
    return this.#tx.write(
      async (trx) => {
        const held = new Map<string, Set<string>>();
        const isHeld = async (k: AllocationKey) => {
          let values = held.get(k.pool);
          if (!values) {
            values = await heldIn(trx, k.pool);
            held.set(k.pool, values);
          }
          return values.has(k.value);
        };
        for (const group of candidates) {
          const keys = checkGroup(group);
          let free = true;
          for (const k of keys) if (await isHeld(k)) free = false;
          if (free) return insertAll(trx, keys, owner, this.#tx.now());
        }
        return undefined;
      },
      { retryOnUnique: true },
    );
  }

  async claimGroup(req: { owner: string; values: readonly AllocationKey[] }): Promise<boolean> {
    const owner = checkText(req.owner, 'owner');
    const keys = checkGroup(req.values);
    return this.#tx.write(
      async (trx) => {
        const missing: AllocationKey[] = [];
        for (const k of keys) {
          const row = await trx
            .selectFrom('allocations')
            .select('owner')
            .where('pool', '=', k.pool)
            .where('value', '=', k.value)
            .executeTakeFirst();
          if (row && row.owner !== owner) return false;
          if (!row) missing.push(k);
        }
        await insertAll(trx, missing, owner, this.#tx.now());
        return true;
      },
      { retryOnUnique: true },
    );
  }

  async transfer(from: string, to: string): Promise<number> {
    checkText(to, 'owner');
    return this.#tx.write(async (trx) => {
      const r = await trx.updateTable('allocations').set({ owner: to }).where('owner', '=', from).executeTakeFirst();
      return Number(r.numUpdatedRows);
    });
  }

  async release(pool: string, value: string, owner: string): Promise<boolean> {
    return this.#tx.write(async (trx) => {
      const r = await trx
        .deleteFrom('allocations')
        .where('pool', '=', pool)
        .where('value', '=', value)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return r.numDeletedRows > 0n;
    });
  }

  async releaseOwner(owner: string, pools?: readonly string[]): Promise<number> {
    if (pools !== undefined && pools.length === 0) return 0;
    return this.#tx.write(async (trx) => {
      let q = trx.deleteFrom('allocations').where('owner', '=', owner);
      if (pools !== undefined) q = q.where('pool', 'in', [...pools]);
      const r = await q.executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  /** By pool, then value (as text: `"99"` sorts after `"100"`). */
  async list(filter: { pool?: string; owner?: string } = {}): Promise<Allocation[]> {
    return this.#tx.read(async (trx) => {
      let q = trx.selectFrom('allocations').selectAll();
      if (filter.pool !== undefined) q = q.where('pool', '=', filter.pool);
      if (filter.owner !== undefined) q = q.where('owner', '=', filter.owner);
      return (await q.orderBy('pool').orderBy('value').execute()).map(fromRow);
    });
  }
}

async function heldIn(trx: Trx, pool: string): Promise<Set<string>> {
  const rows = await trx.selectFrom('allocations').select('value').where('pool', '=', pool).execute();
  return new Set(rows.map((r) => r.value));
}

async function insertAll(trx: Trx, keys: readonly AllocationKey[], owner: string, now: string) {
  const rows: AllocationRow[] = keys.map((k) => ({ pool: k.pool, value: k.value, owner, created_at: now }));
  if (rows.length > 0) await trx.insertInto('allocations').values(rows).execute();
  return rows.map(fromRow);
}

/** A group naming one value twice could never be inserted: refused, rather than retried in vain. */
function checkGroup(group: readonly AllocationKey[]): readonly AllocationKey[] {
  if (group.length === 0) throw new InvalidRequestError({ message: 'an allocation group must not be empty' });
  const seen = new Set<string>();
  for (const k of group) {
    checkText(k.pool, 'pool');
    if (typeof k.value !== 'string') throw new InvalidRequestError({ message: 'allocation values must be strings' });
    const id = `${k.pool}\u0000${k.value}`;
    if (seen.has(id)) throw new InvalidRequestError({ message: `${k.pool} ${k.value} appears twice in one group` });
    seen.add(id);
  }
  return group;
}

function fromRow(r: AllocationRow): Allocation {
  return { pool: r.pool, value: r.value, owner: r.owner, createdAt: r.created_at };
}
