import { after } from 'node:test';
import { type Logger, ProxmoxClient, type ProxmoxClientOptions } from '@vmplane/proxmox';
import { type Simulator, type SimulatorOptions, startSimulator } from '@vmplane/proxmox-sim';

/** Every simulator a test file started, so the file can check them all for schema violations. */
export const started: Simulator[] = [];

/** Starts a simulator that is closed when the file's tests are done. */
export async function sim(options: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator({ taskDuration: 30, ...options });
  started.push(s);
  after(() => s.close());
  return s;
}

type Extra = Partial<Omit<ProxmoxClientOptions, 'username' | 'password' | 'tokenId' | 'tokenSecret' | 'baseUrl'>>;

function simClient(s: Simulator, auth: Partial<ProxmoxClientOptions>, extra: Extra): ProxmoxClient {
  const c = new ProxmoxClient({
    baseUrl: s.url,
    ...auth,
    ...(s.fingerprint ? { fingerprint: s.fingerprint } : {}),
    retry: { initial: 5, max: 20 },
    ...extra,
  } as ProxmoxClientOptions);
  after(() => c.close());
  return c;
}

/** A client logging in with root@pam's password, trusting the simulator's certificate by pin. */
export function passwordClient(s: Simulator, extra: Extra = {}): ProxmoxClient {
  return simClient(s, { username: s.credentials.username, password: s.credentials.password }, extra);
}

/** A client authenticating with the simulator's API token. */
export function tokenClient(s: Simulator, extra: Extra = {}): ProxmoxClient {
  return simClient(s, { tokenId: s.credentials.tokenId, tokenSecret: s.credentials.tokenSecret }, extra);
}

/** A logger that keeps every line, to check what reached it. */
export function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string, fields?: unknown) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Schema violations recorded by every simulator of this file, rendered for an assertion message. */
export function violations(): string[] {
  return started.flatMap((s) => s.violations.map((v) => `${v.method} ${v.path}: ${JSON.stringify(v.errors)}`));
}
