import { BlockList, isIP } from 'node:net';
import type { Store, TokenScope } from '@vmplane/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, sendError } from './errors.js';
import type { ServerConfig } from './types.js';

const RANK: Readonly<Record<TokenScope, number>> = { read: 1, write: 2, admin: 3 };

/** A set of addresses from IPs and CIDRs; `0.0.0.0` (ALLOW_IPS's wildcard) and `::/0` allow all. */
export class AddressSet {
  readonly #list = new BlockList();
  readonly all: boolean;

  constructor(entries: readonly string[]) {
    let all = false;
    for (const raw of entries) {
      const entry = raw.trim();
      if (entry === '') continue;
      if (entry === '0.0.0.0' || entry === '*' || entry === '::/0' || entry === '0.0.0.0/0') {
        all = true;
        continue;
      }
      const [addr = '', bits] = entry.split('/');
      const family = isIP(addr);
      if (family === 0) throw new Error(`not an IP address or CIDR: ${JSON.stringify(entry)}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.#list.addAddress(addr, type);
      else {
        const prefix = Number(bits);
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128))
          throw new Error(`bad prefix length in ${JSON.stringify(entry)}`);
        this.#list.addSubnet(addr, prefix, type);
      }
    }
    this.all = all;
  }

  has(address: string): boolean {
    if (this.all) return true;
    const plain = unmapped(address);
    const family = isIP(plain);
    if (family === 0) return false;
    return this.#list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** `::ffff:127.0.0.1` is 127.0.0.1: a dual-stack socket reports IPv4 peers that way. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * The client's address: the socket's peer, unless that peer is a trusted proxy, in which case the
 * right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Without trusted proxies
 * the header is ignored, so a client cannot name an allowed address for itself (go-pve-qemu's F5).
 */
export function clientAddress(request: FastifyRequest, trusted: AddressSet | undefined): string {
  const peer = unmapped(request.raw.socket.remoteAddress ?? '');
  if (!trusted?.has(peer)) return peer;
  const header = request.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = unmapped(hops[i] ?? '');
    if (!trusted.has(hop)) return hop;
  }
  return peer;
}

/** The bearer token of a request: undefined when there is no header, null when it is malformed. */
export function bearer(request: FastifyRequest): string | undefined | null {
  const header = request.headers.authorization;
  if (header === undefined || header === '') return undefined;
  const space = header.indexOf(' ');
  if (space <= 0) return null;
  if (header.slice(0, space).toLowerCase() !== 'bearer') return null;
  const token = header.slice(space + 1).trim();
  return token === '' ? null : token;
}

/**
 * Installs the checks every route goes through, WebSocket upgrades and SSE streams included,
 * before any lookup: the IP allowlist, then the token (read from the store on every request, so a
 * token the CLI creates or revokes in another process counts at once), then its scope.
 */
export function installAuth(app: FastifyInstance, store: Store, config: ServerConfig): void {
  const allow = config.allowIps ? new AddressSet(config.allowIps) : undefined;
  const trusted = config.trustedProxies?.length ? new AddressSet(config.trustedProxies) : undefined;
  const apiWithoutToken = config.apiAuth === 'allowlist';

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const address = clientAddress(request, trusted);
    if (allow && !allow.has(address))
      return sendError(
        request,
        reply,
        new HttpError(
          403,
          'forbidden',
          'this IP is not allowed to perform this action',
          'this IP is not allowed to perform this action\n',
        ),
      );
    const access = request.routeOptions.config?.access;
    // Unknown routes: refuse as unauthenticated rather than tell which paths exist.
    const scope = access?.scope ?? 'read';
    if (scope === 'none') return;
    const secret = bearer(request);
    if (secret === undefined && apiWithoutToken && access?.flavour === 'gopveqemu') return;
    if (secret === undefined) return sendError(request, reply, unauthorized('authorization header required'));
    if (secret === null) return sendError(request, reply, unauthorized('invalid authorization header format'));
    const record = await store.tokens.verify(secret);
    if (!record) return sendError(request, reply, unauthorized('invalid token'));
    if (RANK[record.scope] < RANK[scope])
      return sendError(
        request,
        reply,
        new HttpError(403, 'forbidden', `this token's scope (${record.scope}) does not allow this route (${scope})`),
      );
    request.token = record;
  });
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, 'unauthorized', message, `unauthorized: ${message}\n`);
}
