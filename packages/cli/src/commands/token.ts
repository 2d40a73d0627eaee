/**
 * `vmplane token create|list|revoke`: API tokens, through the store itself rather than the API, so
 * that the first token can be made before anyone holds one. The server reads the tokens table on
 * every request, so a token made or revoked here takes effect at once, even while it runs.
 */
import { openStore, type TokenRecord, type TokenScope } from '@vmplane/core';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { formatTable } from '../render/table.js';

export const SCOPES: readonly TokenScope[] = ['read', 'write', 'admin'];

export function parseScope(value: string | undefined): TokenScope {
  if (value === undefined) throw new UsageError('--scope is required: read, write or admin');
  if (!(SCOPES as readonly string[]).includes(value))
    throw new UsageError(`--scope must be read, write or admin, not ${JSON.stringify(value)}`);
  return value as TokenScope;
}

function requireDataDir(dataDir: string | undefined): string {
  if (!dataDir) throw new UsageError('--data-dir is required: the directory the server keeps its state in');
  return dataDir;
}

/** Opens the store for one action and always closes it, so the WAL is checkpointed. */
async function withStore<T>(dataDir: string, fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>) {
  const store = await openStore({ dataDir });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Creates a token; the secret is returned for printing alone on stdout, the one time it exists. */
export async function createToken(opts: { dataDir?: string; scope?: string; name?: string }): Promise<string> {
  const dataDir = requireDataDir(opts.dataDir);
  const scope = parseScope(opts.scope);
  const req: { scope: TokenScope; name?: string } = { scope };
  if (opts.name !== undefined) req.name = opts.name;
  return withStore(dataDir, async (store) => (await store.tokens.create(req)).token);
}

export async function listTokens(opts: { dataDir?: string }): Promise<TokenRecord[]> {
  return withStore(requireDataDir(opts.dataDir), (store) => store.tokens.list());
}

export async function revokeToken(opts: { dataDir?: string }, idOrName: string): Promise<void> {
  const revoked = await withStore(requireDataDir(opts.dataDir), (store) => store.tokens.revoke(idOrName));
  if (!revoked)
    throw new CliError(`no active token with the id or name ${JSON.stringify(idOrName)}`, {
      exitCode: ExitCode.notFound,
      hint: 'see `vmplane token list --data-dir <dir>`',
    });
}

/** The table `token list` prints: never the secret, which the store does not have. */
export function tokenTable(records: readonly TokenRecord[]): string {
  return formatTable(
    ['ID', 'NAME', 'SCOPE', 'CREATED', 'LAST USED', 'REVOKED'],
    records.map((r) => [r.id, r.name, r.scope, r.createdAt, r.lastUsedAt ?? '-', r.revokedAt ?? '-']),
  );
}
