import { inspect } from 'node:util';
import { InvalidArgumentError, UnauthorizedError } from '@vmplane/common';
import { BACKEND, TfaRequiredError } from './errors.js';
import { checkRealm, checkTokenId, checkUserid } from './ids.js';

/** Credentials for a ticket session. */
export interface PasswordCredentials {
  username: string;
  password: string;
  /** Appended as `@realm` when `username` has none (default `pam` only when neither says). */
  realm?: string | undefined;
  /** A TOTP code, or a function producing one, for accounts with a second factor. */
  otp?: string | (() => string | Promise<string>) | undefined;
}

/** An API token: `user@realm!tokenname` and its secret UUID. No session, no CSRF. */
export interface TokenCredentials {
  tokenId: string;
  tokenSecret: string;
}

/** How the transport sends an unauthenticated POST (for /access/ticket). */
export type LoginSender = (body: Record<string, string>) => Promise<Record<string, unknown>>;

export interface Session {
  ticket: string;
  csrf: string;
  username: string;
  /** Local clock (ms) when PVE issued it. */
  issuedAt: number;
}

/** What the transport asks of an authenticator. */
export interface Authenticator {
  readonly kind: 'ticket' | 'token';
  /** Headers for one request; logs in first when needed. */
  headers(write: boolean): Promise<Record<string, string>>;
  /** Called on a 401: returns true when a fresh login makes a retry worthwhile. */
  refreshAfterUnauthorized(failedWith: Record<string, string>): Promise<boolean>;
}

export class TokenAuth implements Authenticator {
  readonly kind = 'token';
  readonly #header: string;
  constructor(creds: TokenCredentials) {
    checkTokenId(creds.tokenId);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (typeof creds.tokenSecret !== 'string' || !/^[^\s\x00-\x1f\x7f]+$/.test(creds.tokenSecret)) {
      // The secret's value stays out of the message.
      throw new InvalidArgumentError({
        message: 'tokenSecret must be a non-empty string without spaces or control characters',
        argument: 'tokenSecret',
        backend: BACKEND,
      });
    }
    this.#header = `PVEAPIToken=${creds.tokenId}=${creds.tokenSecret}`;
  }
  async headers(): Promise<Record<string, string>> {
    return { Authorization: this.#header };
  }
  async refreshAfterUnauthorized(): Promise<boolean> {
    // A token cannot be renewed: a 401 is final.
    return false;
  }
}

export interface TicketAuthOptions {
  /** Renew a ticket once it is this old (ms). PVE tickets live 2 h; default 1 h. */
  renewAfter?: number | undefined;
  /** Clock in ms, injectable for tests that move time. */
  now?: () => number;
}

/** PVE ticket lifetime. */
export const TICKET_LIFETIME_MS = 2 * 60 * 60 * 1000;
// Past this age the ticket can no longer be used to renew itself: go straight to the password.
const RENEW_DEADLINE_MS = TICKET_LIFETIME_MS - 60_000;

/**
 * Ticket sessions: one login shared by every concurrent caller, renewal by posting the current
 * ticket as the password before it expires (falling back to the credentials), and a fresh login
 * when the server says the ticket is no longer valid.
 */
export class TicketAuth implements Authenticator {
  readonly kind = 'ticket';
  readonly #username: string;
  readonly #password: string;
  readonly #otp: PasswordCredentials['otp'];
  readonly #send: LoginSender;
  readonly #renewAfter: number;
  readonly #now: () => number;
  #session: Session | undefined;
  #inFlight: Promise<Session> | undefined;
  /** Logins and renewals performed, for tests and the benchmark. */
  logins = 0;
  renewals = 0;

  constructor(creds: PasswordCredentials, send: LoginSender, opts: TicketAuthOptions = {}) {
    if (typeof creds.username !== 'string' || !creds.username)
      throw new InvalidArgumentError({ message: 'username is empty', argument: 'username', backend: BACKEND });
    if (typeof creds.password !== 'string' || !creds.password)
      throw new InvalidArgumentError({ message: 'password is empty', argument: 'password', backend: BACKEND });
    if (creds.realm !== undefined) checkRealm(creds.realm);
    this.#username = checkUserid(
      creds.username.includes('@') ? creds.username : `${creds.username}@${creds.realm ?? 'pam'}`,
    );
    this.#password = creds.password;
    this.#otp = creds.otp;
    this.#send = send;
    this.#renewAfter = Math.min(opts.renewAfter ?? 60 * 60 * 1000, RENEW_DEADLINE_MS);
    this.#now = opts.now ?? Date.now;
  }

  get username(): string {
    return this.#username;
  }

  /** The current session, if any (tickets are secrets: never log this). */
  get session(): Readonly<Session> | undefined {
    return this.#session;
  }

  async headers(write: boolean): Promise<Record<string, string>> {
    const session = await this.#ensure();
    const headers: Record<string, string> = { Cookie: `PVEAuthCookie=${session.ticket}` };
    if (write) headers.CSRFPreventionToken = session.csrf;
    return headers;
  }

  async refreshAfterUnauthorized(failedWith: Record<string, string>): Promise<boolean> {
    // Only drop the session the failed request used; a concurrent caller may already have a new one.
    if (this.#session && failedWith.Cookie === `PVEAuthCookie=${this.#session.ticket}`) this.#session = undefined;
    await this.#ensure();
    return true;
  }

  /** Forgets the session; the next call logs in again. */
  logout(): void {
    this.#session = undefined;
  }

  // `inspect(auth, { showHidden: true, getters: true })` would call `session` and print the
  // ticket: printing an authenticator shows who it is and whether it has a session, nothing more.
  [inspect.custom](): string {
    const state = this.#session ? 'a session' : 'no session';
    return `TicketAuth { username: ${JSON.stringify(this.#username)}, ${state}, logins: ${this.logins}, renewals: ${this.renewals} }`;
  }

  #ensure(): Promise<Session> {
    const s = this.#session;
    if (s && this.#now() - s.issuedAt < this.#renewAfter) return Promise.resolve(s);
    // Single flight: every caller waiting for a session shares this one promise.
    this.#inFlight ??= this.#obtain(s).finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #obtain(previous: Session | undefined): Promise<Session> {
    if (previous && this.#now() - previous.issuedAt < RENEW_DEADLINE_MS) {
      try {
        const renewed = await this.#login(previous.ticket);
        this.renewals++;
        return renewed;
      } catch (error) {
        // The ticket was refused (expired server-side, key rotated): the credentials still work.
        if (!(error instanceof UnauthorizedError) || error instanceof TfaRequiredError) throw error;
      }
    }
    const session = await this.#login(this.#password);
    this.logins++;
    return session;
  }

  async #login(password: string): Promise<Session> {
    const issuedAt = this.#now();
    let data = await this.#send({ username: this.#username, password });
    if (data.NeedTFA !== undefined && data.NeedTFA !== 0 && data.NeedTFA !== false) {
      const methods = tfaMethods(data.ticket);
      if (!this.#otp) {
        throw new TfaRequiredError({
          message: `Account ${this.#username} requires a second factor (${methods.join(', ') || 'TFA'}): pass otp, or use an API token`,
          methods,
        });
      }
      const code = typeof this.#otp === 'function' ? await this.#otp() : this.#otp;
      data = await this.#send({
        username: this.#username,
        'tfa-challenge': String(data.ticket ?? ''),
        password: `totp:${code}`,
      });
    }
    if (typeof data.ticket !== 'string' || typeof data.CSRFPreventionToken !== 'string') {
      throw new UnauthorizedError({ status: 401, backend: BACKEND, message: 'Login answered without a ticket' });
    }
    const session: Session = {
      ticket: data.ticket,
      csrf: data.CSRFPreventionToken,
      username: typeof data.username === 'string' ? data.username : this.#username,
      issuedAt,
    };
    this.#session = session;
    return session;
  }
}

// A TFA half ticket looks like `PVE:!tfa!{"totp":true,...}:...`; the JSON names the offered factors.
function tfaMethods(ticket: unknown): string[] {
  if (typeof ticket !== 'string') return [];
  const m = /!tfa!([^:]*)/.exec(ticket);
  if (!m?.[1]) return [];
  try {
    const parsed = JSON.parse(decodeURIComponent(m[1])) as Record<string, unknown>;
    return Object.entries(parsed)
      .filter(([, v]) => v)
      .map(([k]) => k);
  } catch {
    return [];
  }
}
