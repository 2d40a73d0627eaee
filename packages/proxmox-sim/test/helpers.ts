import { after } from 'node:test';
import { type Simulator, type SimulatorOptions, startSimulator } from '@vmplane/proxmox-sim';

/** Starts a simulator closed after the file's tests. */
export async function sim(options: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator({ taskDuration: 20, ...options });
  after(() => s.close());
  return s;
}

export interface Answer {
  status: number;
  reason: string;
  body: { data: unknown; errors?: Record<string, string>; message?: string; total?: number };
}

/** A tiny raw client: ticket login (or token), form-encoded writes, no retries. */
export class Raw {
  headers: Record<string, string> = {};
  constructor(readonly s: Simulator) {}

  async login(username = this.s.credentials.username, password = this.s.credentials.password): Promise<Answer> {
    const a = await this.call('POST', '/access/ticket', { username, password });
    const d = a.body.data as { ticket?: string; CSRFPreventionToken?: string } | null;
    if (a.status === 200 && d?.ticket && d.CSRFPreventionToken) {
      this.headers = {
        Cookie: `PVEAuthCookie=${encodeURIComponent(d.ticket)}`,
        CSRFPreventionToken: d.CSRFPreventionToken,
      };
    }
    return a;
  }

  useToken(): this {
    this.headers = { Authorization: this.s.credentials.tokenHeader };
    return this;
  }

  async call(
    method: string,
    path: string,
    params: Record<string, string | number> = {},
    json = false,
  ): Promise<Answer> {
    const qs = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const inQuery = method === 'GET' || method === 'DELETE';
    const url = `${this.s.apiUrl}${path}${inQuery && qs ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { ...this.headers };
    let body: string | undefined;
    if (!inQuery) {
      body = json ? JSON.stringify(params) : qs;
      headers['Content-Type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return { status: res.status, reason: res.statusText, body: JSON.parse(text) as Answer['body'] };
  }

  get = (path: string, params: Record<string, string | number> = {}) => this.call('GET', path, params);
  post = (path: string, params: Record<string, string | number> = {}) => this.call('POST', path, params);
  put = (path: string, params: Record<string, string | number> = {}) => this.call('PUT', path, params);
  del = (path: string, params: Record<string, string | number> = {}) => this.call('DELETE', path, params);

  /** Polls a task until it stops; returns its status object. */
  async wait(upid: string): Promise<{ status: string; exitstatus?: string }> {
    const node = upid.split(':')[1] ?? '';
    for (;;) {
      const a = await this.get(`/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
      const d = a.body.data as { status: string; exitstatus?: string };
      if (d.status === 'stopped') return d;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export async function loggedIn(s: Simulator): Promise<Raw> {
  const r = new Raw(s);
  const a = await r.login();
  if (a.status !== 200) throw new Error(`login failed: ${a.status}`);
  return r;
}
