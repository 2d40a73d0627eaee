import { createHash, randomBytes } from 'node:crypto';
import type { Selectable } from 'kysely';
import { AlreadyExistsError, InvalidRequestError } from '../errors.js';
import { setOptional, ulid } from './codec.js';
import type { TokenRecord, TokenScope, TokenStore } from './contract.js';
import type { TokenRow } from './schema.js';
import { isUniqueViolation, type Trx, type Tx } from './tx.js';

const SCOPES: readonly TokenScope[] = ['read', 'write', 'admin'];
const PREFIX = 'vmp_';
/** `vmp_` and 32 random bytes in base64url (43 characters): what `create` makes, nothing else. */
const SHAPE = /^vmp_[A-Za-z0-9_-]{43}$/;
/** `last_used_at` is a hint, not an audit log: at most one write a minute per token. */
const LAST_USED_EVERY_MS = 60_000;

/**
 * API tokens. The secret is shown once, by `create`; the table keeps its SHA-256, looked up by
 * equality. A plain hash is enough because the secret is 256 random bits, not a password, and an
 * index lookup leaks nothing a comparison in constant time would protect. Nothing here puts a
 * secret or a hash into an error message.
 */
export class SqlTokenStore implements TokenStore {
  readonly #tx: Tx;

  constructor(tx: Tx) {
    this.#tx = tx;
  }

  async create(req: { scope: TokenScope; name?: string }): Promise<{ token: string; record: TokenRecord }> {
    if (!SCOPES.includes(req.scope))
      throw new InvalidRequestError({ message: `scope must be one of ${SCOPES.join(', ')}`, field: 'scope' });
    const id = ulid(Date.parse(this.#tx.now()));
    const name = req.name === undefined ? id : checkName(req.name);
    const token = PREFIX + randomBytes(32).toString('base64url');
    const row: TokenRow = {
      id,
      name,
      scope: req.scope,
      hash: hashOf(token),
      created_at: this.#tx.now(),
      last_used_at: null,
      revoked_at: null,
    };
    const record = await this.#tx.write(async (trx) => {
      const clash = await trx.selectFrom('api_tokens').select('id').where('name', '=', name).executeTakeFirst();
      if (clash) throw nameTaken(name);
      try {
        await trx.insertInto('api_tokens').values(row).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw nameTaken(name);
        throw error;
      }
      return fromRow(row);
    });
    return { token, record };
  }

  /** Reads the table every time, so a token revoked by another process is refused at once. */
  async verify(secret: string): Promise<TokenRecord | undefined> {
    if (typeof secret !== 'string' || !SHAPE.test(secret)) return undefined;
    const hash = hashOf(secret);
    return this.#tx.write(async (trx) => {
      const row = await trx
        .selectFrom('api_tokens')
        .selectAll()
        .where('hash', '=', hash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (!row) return undefined;
      const now = this.#tx.now();
      const last = row.last_used_at === null ? Number.NEGATIVE_INFINITY : Date.parse(row.last_used_at);
      if (Date.parse(now) - last >= LAST_USED_EVERY_MS) {
        await trx.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
        row.last_used_at = now;
      }
      return fromRow(row);
    });
  }

  async list(): Promise<TokenRecord[]> {
    return this.#tx.read(async (trx) => {
      const rows = await trx.selectFrom('api_tokens').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(fromRow);
    });
  }

  /** By id, else by name. False when no token matches or it was revoked already. */
  async revoke(idOrName: string): Promise<boolean> {
    return this.#tx.write(async (trx) => {
      const row = (await byColumn(trx, 'id', idOrName)) ?? (await byColumn(trx, 'name', idOrName));
      if (!row || row.revoked_at !== null) return false;
      await trx.updateTable('api_tokens').set({ revoked_at: this.#tx.now() }).where('id', '=', row.id).execute();
      return true;
    });
  }
}

function byColumn(trx: Trx, column: 'id' | 'name', value: string) {
  return trx.selectFrom('api_tokens').select(['id', 'revoked_at']).where(column, '=', value).executeTakeFirst();
}

function hashOf(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function checkName(name: string): string {
  // Printable, so that a name shown by the CLI is the name typed to revoke it.
  if (typeof name !== 'string' || name.length === 0 || name.length > 128 || /\p{Cc}/u.test(name))
    throw new InvalidRequestError({
      message: 'a token name is 1 to 128 characters with no control characters',
      field: 'name',
    });
  return name;
}

function nameTaken(name: string): AlreadyExistsError {
  return new AlreadyExistsError({ message: `a token named ${JSON.stringify(name)} exists already` });
}

function fromRow(r: Selectable<TokenRow>): TokenRecord {
  const t: TokenRecord = { id: r.id, name: r.name, scope: r.scope as TokenScope, createdAt: r.created_at };
  setOptional(t, 'lastUsedAt', r.last_used_at);
  setOptional(t, 'revokedAt', r.revoked_at);
  return t;
}
