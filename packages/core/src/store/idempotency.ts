import { checkText } from './codec.js';
import type { IdempotencyStore } from './contract.js';
import type { Tx } from './tx.js';

type Claim = { kind: 'new' } | { kind: 'existing'; operationId: string } | { kind: 'conflict' };

/**
 * Idempotency keys, per scope (the route and the tenant: one key may mean different requests in
 * two scopes). The body hash is the caller's; only equality matters here.
 */
export class SqlIdempotencyStore implements IdempotencyStore {
  readonly #tx: Tx;

  constructor(tx: Tx) {
    this.#tx = tx;
  }

  async claim(req: { key: string; scope: string; bodyHash: string; operationId: string }): Promise<Claim> {
    const key = checkText(req.key, 'key');
    const scope = checkText(req.scope, 'scope');
    const bodyHash = checkText(req.bodyHash, 'bodyHash');
    const operationId = checkText(req.operationId, 'operationId', 128);
    // Retried on a unique violation: two first claims of one key race, and the loser must answer
    // `existing` or `conflict`, never an error.
    return this.#tx.write(
      async (trx): Promise<Claim> => {
        const row = await trx
          .selectFrom('idempotency_keys')
          .select(['body_hash', 'operation_id'])
          .where('scope', '=', scope)
          .where('key', '=', key)
          .executeTakeFirst();
        if (row)
          return row.body_hash === bodyHash
            ? { kind: 'existing', operationId: row.operation_id }
            : { kind: 'conflict' };
        await trx
          .insertInto('idempotency_keys')
          .values({ scope, key, body_hash: bodyHash, operation_id: operationId, created_at: this.#tx.now() })
          .execute();
        return { kind: 'new' };
      },
      { retryOnUnique: true },
    );
  }

  async forget(key: string, scope: string): Promise<void> {
    await this.#tx.write((trx) =>
      trx.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).execute(),
    );
  }
}
