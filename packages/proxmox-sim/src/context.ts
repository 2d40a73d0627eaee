import type { Auth, AuthInfo } from './auth.js';
import type { SimClock } from './clock.js';
import type { Faults } from './faults.js';
import type { DownloadSettings } from './handlers/download.js';
import type { PveOperation, Route } from './schema.js';
import { fail, type SimState } from './state.js';

/** What the scripted guest agent answers for `exec`; return undefined to fall back to the built-ins. */
export type AgentScript = (request: {
  vmid: number;
  node: string;
  command: string[];
  input: string | undefined;
}) => { exitcode?: number; stdout?: string; stderr?: string; durationMs?: number } | undefined;

export interface UploadedFile {
  field: string;
  filename: string;
  data: Buffer;
}

export interface SimEnv {
  state: SimState;
  auth: Auth;
  clock: SimClock;
  agent: AgentScript | undefined;
  certFingerprint: string | undefined;
  certPem: string | undefined;
  downloads: DownloadSettings;
  /** Guest faults (a silent agent, failing commands) for the agent's answers. */
  faults: Faults;
}

/** One request, as a handler sees it: validated, coerced parameters and the caller. */
export class Ctx {
  constructor(
    readonly env: SimEnv,
    readonly method: string,
    readonly path: string,
    readonly route: Route,
    readonly op: PveOperation,
    readonly params: Record<string, unknown>,
    readonly auth: AuthInfo,
    readonly files: UploadedFile[],
  ) {}

  get state(): SimState {
    return this.env.state;
  }

  /** The user as written in UPIDs (`user@realm` or `user@realm!token`). */
  get taskUser(): string {
    return this.auth.tokenid ?? this.auth.userid;
  }

  has(name: string): boolean {
    return this.params[name] !== undefined;
  }

  str(name: string): string {
    const v = this.params[name];
    if (v === undefined) return fail(`missing parameter '${name}'`, 400);
    return String(v);
  }

  optStr(name: string): string | undefined {
    const v = this.params[name];
    return v === undefined ? undefined : String(v);
  }

  int(name: string): number {
    const v = this.params[name];
    if (v === undefined) return fail(`missing parameter '${name}'`, 400);
    return Number(v);
  }

  optInt(name: string): number | undefined {
    const v = this.params[name];
    return v === undefined ? undefined : Number(v);
  }

  bool(name: string, dflt = false): boolean {
    const v = this.params[name];
    return v === undefined ? dflt : v === true || v === 1 || v === '1';
  }
}

/** A handler's answer with extra envelope fields (e.g. `total`). */
export class Envelope {
  constructor(
    readonly data: unknown,
    readonly extra: Record<string, unknown>,
  ) {}
}

export type Handler = (ctx: Ctx) => unknown;
