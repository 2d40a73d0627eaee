import type { Selectable } from 'kysely';
import { AlreadyExistsError, InvalidRequestError } from '../errors.js';
import { type Instance, type InstanceNetwork, isInstanceState, type ProviderRef, refKey } from '../model/instance.js';
import { checkText, fromJson, fromJsonOrUndefined, setOptional, toJson } from './codec.js';
import type { InstanceChange, InstanceFilter, InstanceStore } from './contract.js';
import type { InstanceRow } from './schema.js';
import { isUniqueViolation, type Trx, type Tx } from './tx.js';

/** Fields an instance must always have: `undefined` in a change leaves them as they are. */
const REQUIRED = new Set<string>(['name', 'image', 'state', 'env', 'tags', 'created_at', 'provider', 'ref']);

export class SqlInstanceStore implements InstanceStore {
  readonly #tx: Tx;

  constructor(tx: Tx) {
    this.#tx = tx;
  }

  async insert(instance: Instance): Promise<void> {
    const row = toRow(check(instance), this.#tx.now());
    await this.#tx.write(async (trx) => {
      await refuseTaken(trx, row);
      try {
        await trx.insertInto('instances').values(row).execute();
      } catch (error) {
        // Another process inserted between the check and the insert.
        if (isUniqueViolation(error)) throw taken(row);
        throw error;
      }
    });
  }

  find(idOrName: string): Promise<Instance | undefined> {
    return this.#tx.read(async (trx) => {
      const byId = await trx.selectFrom('instances').selectAll().where('id', '=', idOrName).executeTakeFirst();
      const row =
        byId ?? (await trx.selectFrom('instances').selectAll().where('name', '=', idOrName).executeTakeFirst());
      return row && fromRow(row);
    });
  }

  findByRef(provider: string, key: string): Promise<Instance | undefined> {
    return this.#tx.read(async (trx) => {
      const row = await trx
        .selectFrom('instances')
        .selectAll()
        .where('provider', '=', provider)
        .where('ref_key', '=', key)
        .executeTakeFirst();
      return row && fromRow(row);
    });
  }

  list(filter: InstanceFilter = {}): Promise<Instance[]> {
    return this.#tx.read(async (trx) => {
      let q = trx.selectFrom('instances').selectAll();
      if (filter.state !== undefined) q = q.where('state', '=', filter.state);
      if (filter.provider !== undefined) q = q.where('provider', '=', filter.provider);
      const rows = await q.orderBy('created_at').orderBy('id').execute();
      // Tags are a JSON column: matched here rather than with each database's own JSON operators.
      const wanted = Object.entries(filter.tags ?? {});
      return rows.map(fromRow).filter((i) => wanted.every(([k, v]) => Object.hasOwn(i.tags, k) && i.tags[k] === v));
    });
  }

  update(id: string, change: InstanceChange): Promise<Instance | undefined> {
    return this.#tx.write(async (trx) => {
      const current = await trx.selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst();
      if (!current) return undefined;
      const merged: Record<string, unknown> = { ...fromRow(current) };
      for (const [key, value] of Object.entries(change)) {
        if (key === 'id') continue;
        if (value !== undefined) merged[key] = value;
        else if (!REQUIRED.has(key)) delete merged[key];
      }
      merged.id = id;
      const next = check(merged as unknown as Instance);
      const row = toRow(next, this.#tx.now());
      await refuseTaken(trx, row, id);
      const { id: _id, ...rest } = row;
      try {
        await trx.updateTable('instances').set(rest).where('id', '=', id).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw taken(row);
        throw error;
      }
      return next;
    });
  }

  delete(id: string): Promise<boolean> {
    return this.#tx.write(async (trx) => {
      const r = await trx.deleteFrom('instances').where('id', '=', id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    });
  }
}

/**
 * Says which unique key a row collides with, in words a user can act on. `self` is the id being
 * updated: its own row is no clash.
 */
async function refuseTaken(trx: Trx, row: InstanceRow, self?: string): Promise<void> {
  const clash = await trx
    .selectFrom('instances')
    .select(['id', 'name', 'provider', 'ref_key'])
    .where((eb) =>
      eb.or([
        eb('id', '=', row.id),
        eb('name', '=', row.name),
        eb.and([eb('provider', '=', row.provider), eb('ref_key', '=', row.ref_key)]),
      ]),
    )
    .execute();
  for (const other of clash) {
    if (other.id === self) continue;
    if (other.id === row.id)
      throw new AlreadyExistsError({ message: `an instance with id ${JSON.stringify(row.id)} exists already` });
    if (other.name === row.name)
      throw new AlreadyExistsError({ message: `an instance named ${JSON.stringify(row.name)} exists already` });
    throw new AlreadyExistsError({
      message: `instance ${other.id} is already ${row.ref_key} on provider ${JSON.stringify(row.provider)}`,
    });
  }
}

function taken(row: InstanceRow): AlreadyExistsError {
  return new AlreadyExistsError({
    message: `an instance with id ${JSON.stringify(row.id)}, name ${JSON.stringify(row.name)} or ref ${row.ref_key} exists already`,
  });
}

function check(instance: Instance): Instance {
  checkText(instance.id, 'id');
  checkText(instance.name, 'name');
  checkText(instance.provider, 'provider');
  if (typeof instance.image !== 'string') throw new InvalidRequestError({ message: 'image must be a string' });
  if (!isInstanceState(instance.state))
    throw new InvalidRequestError({ message: `state ${JSON.stringify(instance.state)} is not an instance state` });
  const ref: unknown = instance.ref;
  if (typeof ref !== 'object' || ref === null || !('type' in ref) || (ref.type !== 'lxd' && ref.type !== 'proxmox'))
    throw new InvalidRequestError({ message: 'ref must be an lxd or proxmox reference', field: 'ref' });
  return instance;
}

function toRow(i: Instance, now: string): InstanceRow {
  return {
    id: i.id,
    name: i.name,
    image: i.image,
    state: i.state,
    state_error: i.state_error ?? null,
    size: i.size ?? null,
    vcpus: i.vcpus ?? null,
    env: toJson(i.env ?? {}, 'env'),
    tags: toJson(i.tags ?? {}, 'tags'),
    network: i.network === undefined ? null : toJson(i.network, 'network'),
    created_at: i.created_at,
    expires_at: i.expires_at ?? null,
    started_at: i.started_at ?? null,
    stopped_at: i.stopped_at ?? null,
    exit_code: i.exit_code ?? null,
    exit_message: i.exit_message ?? null,
    has_snapshot: i.has_snapshot === undefined ? null : i.has_snapshot ? 1 : 0,
    hypervisor: i.hypervisor ?? null,
    current_phase: i.current_phase ?? null,
    current_phase_since: i.current_phase_since ?? null,
    phase_durations_ms: i.phase_durations_ms === undefined ? null : toJson(i.phase_durations_ms, 'phase_durations_ms'),
    provider: i.provider,
    ref: toJson(i.ref, 'ref'),
    ref_key: refKey(i.ref),
    updated_at: now,
  };
}

function fromRow(r: Selectable<InstanceRow>): Instance {
  const i: Instance = {
    id: r.id,
    name: r.name,
    image: r.image,
    state: isInstanceState(r.state) ? r.state : 'Unknown',
    env: fromJson<Record<string, string>>(r.env),
    tags: fromJson<Record<string, string>>(r.tags),
    created_at: r.created_at,
    expires_at: r.expires_at,
    provider: r.provider,
    ref: fromJson<ProviderRef>(r.ref),
  };
  setOptional(i, 'state_error', r.state_error);
  setOptional(i, 'size', r.size);
  setOptional(i, 'vcpus', r.vcpus);
  setOptional(i, 'network', fromJsonOrUndefined<InstanceNetwork>(r.network));
  setOptional(i, 'started_at', r.started_at);
  setOptional(i, 'stopped_at', r.stopped_at);
  setOptional(i, 'exit_code', r.exit_code);
  setOptional(i, 'exit_message', r.exit_message);
  if (r.has_snapshot !== null) i.has_snapshot = r.has_snapshot === 1;
  setOptional(i, 'hypervisor', r.hypervisor as Instance['hypervisor']);
  setOptional(i, 'current_phase', r.current_phase);
  setOptional(i, 'current_phase_since', r.current_phase_since);
  setOptional(i, 'phase_durations_ms', fromJsonOrUndefined<Record<string, number>>(r.phase_durations_ms));
  return i;
}
