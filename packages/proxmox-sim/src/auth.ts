import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Clock } from './clock.js';

/** A user the simulator knows. `userid` is `name@realm`, e.g. `root@pam`. */
export interface SimUser {
  userid: string;
  password?: string | undefined;
  /** Administrator may do everything; Auditor may only read (writes answer 403). */
  role?: 'Administrator' | 'PVEAuditor' | undefined;
  /** A TOTP code that completes the second factor; the first login answers `NeedTFA: 1`. */
  tfa?: { totp: string } | undefined;
  tokens?: SimToken[] | undefined;
  enabled?: boolean | undefined;
}

export interface SimToken {
  /** The token name (the part after `!`). */
  id: string;
  secret: string;
  /** Privilege separation: with it the token may only read. Default false. */
  privsep?: boolean | undefined;
}

export interface AuthInfo {
  userid: string;
  /** `user@realm!tokenid` for token requests. */
  tokenid?: string | undefined;
  via: 'ticket' | 'token' | 'none';
  role: 'Administrator' | 'PVEAuditor';
}

/** Two hours, like PVE. */
export const TICKET_LIFETIME_S = 7200;

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

const hex8 = (n: number) => Math.floor(n).toString(16).toUpperCase().padStart(8, '0');

export class Auth {
  readonly users = new Map<string, SimUser>();
  private secret = randomBytes(32);

  constructor(
    private readonly clock: Clock,
    users: SimUser[],
  ) {
    for (const u of users) this.users.set(u.userid, u);
  }

  /** Invalidates every ticket and CSRF token issued so far (fault: ticket expiry). */
  rotateSecret(): void {
    this.secret = randomBytes(32);
  }

  private sign(data: string): string {
    return createHmac('sha256', this.secret).update(data).digest('base64').replace(/=+$/, '');
  }

  private nowS(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  issueTicket(userid: string, tfaPending = false): string {
    const plain = `PVE:${tfaPending ? `!tfa!${userid}` : userid}:${hex8(this.nowS())}`;
    return `${plain}::${this.sign(plain)}`;
  }

  issueCsrf(userid: string): string {
    const t = hex8(this.nowS());
    return `${t}:${this.sign(`${t}:${userid}`)}`;
  }

  /** The user of a valid full ticket, or undefined. */
  verifyTicket(ticket: string, allowTfaPending = false): { userid: string; tfaPending: boolean } | undefined {
    const m = /^(PVE:(!tfa!)?([^:]+):([0-9A-F]{8}))::(.+)$/.exec(ticket);
    if (!m) return undefined;
    const [, plain, tfa, userid, time, sig] = m as unknown as [
      string,
      string,
      string | undefined,
      string,
      string,
      string,
    ];
    if (!safeEqual(sig, this.sign(plain))) return undefined;
    const age = this.nowS() - Number.parseInt(time, 16);
    if (age < -300 || age >= TICKET_LIFETIME_S) return undefined;
    if (tfa && !allowTfaPending) return undefined;
    return { userid, tfaPending: tfa !== undefined };
  }

  verifyCsrf(token: string | undefined, userid: string): boolean {
    if (!token) return false;
    const m = /^([0-9A-F]{8}):(.+)$/.exec(token);
    if (!m) return false;
    const [, time, sig] = m as unknown as [string, string, string];
    if (!safeEqual(sig, this.sign(`${time}:${userid}`))) return false;
    const age = this.nowS() - Number.parseInt(time, 16);
    return age > -300 && age < TICKET_LIFETIME_S;
  }

  checkPassword(userid: string, password: string): SimUser | undefined {
    const u = this.users.get(userid);
    if (!u || u.enabled === false || u.password === undefined) return undefined;
    return safeEqual(password, u.password) ? u : undefined;
  }

  /** Parses `PVEAPIToken=user@realm!id=secret` (also with `:` before the secret). */
  checkToken(header: string): AuthInfo {
    const m = /^PVEAPIToken=([^!\s]+)!([^=:\s]+)[=:](.+)$/.exec(header.trim());
    if (!m) throw new AuthError(401, 'invalid token value!');
    const [, userid, id, secret] = m as unknown as [string, string, string, string];
    const u = this.users.get(userid);
    const tok = u?.tokens?.find((t) => t.id === id);
    if (!u || !tok || u.enabled === false || !safeEqual(secret, tok.secret))
      throw new AuthError(401, 'authentication failure');
    return {
      userid,
      tokenid: `${userid}!${id}`,
      via: 'token',
      role: tok.privsep ? 'PVEAuditor' : (u.role ?? 'Administrator'),
    };
  }

  roleOf(userid: string): 'Administrator' | 'PVEAuditor' {
    return this.users.get(userid)?.role ?? 'Administrator';
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function newTokenSecret(): string {
  return randomUUID();
}

/** The `cap` object of a ticket answer, for an administrator or an auditor. */
export function capabilities(role: 'Administrator' | 'PVEAuditor'): Record<string, Record<string, number>> {
  const admin = role === 'Administrator' ? 1 : 0;
  return {
    vms: {
      'VM.Audit': 1,
      'VM.Allocate': admin,
      'VM.Clone': admin,
      'VM.Config.CDROM': admin,
      'VM.Config.CPU': admin,
      'VM.Config.Cloudinit': admin,
      'VM.Config.Disk': admin,
      'VM.Config.HWType': admin,
      'VM.Config.Memory': admin,
      'VM.Config.Network': admin,
      'VM.Config.Options': admin,
      'VM.Console': admin,
      'VM.Migrate': admin,
      'VM.PowerMgmt': admin,
      'VM.Snapshot': admin,
      'VM.Snapshot.Rollback': admin,
      'VM.GuestAgent.Audit': 1,
      'VM.GuestAgent.Unrestricted': admin,
      'Permissions.Modify': admin,
    },
    storage: { 'Datastore.Audit': 1, 'Datastore.Allocate': admin, 'Datastore.AllocateSpace': admin },
    access: { 'User.Modify': admin, 'Group.Allocate': admin, 'Permissions.Modify': admin },
    nodes: { 'Sys.Audit': 1, 'Sys.Console': admin, 'Sys.Modify': admin, 'Sys.PowerMgmt': admin, 'Sys.Syslog': 1 },
    dc: { 'Sys.Audit': 1, 'Sys.Modify': admin, 'SDN.Audit': 1 },
    sdn: { 'SDN.Audit': 1, 'SDN.Allocate': admin },
    mapping: { 'Mapping.Audit': 1, 'Mapping.Use': admin },
  };
}
