/**
 * `npm start`: vmplane on its embedded defaults (SQLite in .cache/demo, the local LXD daemon), an
 * instance provisioned through the HTTP API with every stage shown as it happens, a command run in
 * it over hypeman's exec WebSocket, and how to reach the API. In a terminal the server keeps
 * serving until Ctrl-C; piped, it cleans up and exits.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startServer } from '@vmplane/server';
import WebSocket from 'ws';

const root = process.env.VMPLANE_ROOT ?? process.cwd();
const os = 'busybox';
const version = '1.35';
const started = performance.now();
const step = (text: string) =>
  console.log(`[${((performance.now() - started) / 1000).toFixed(2).padStart(6)} s] ${text}`);

const server = await startServer({
  dataDir: join(root, '.cache', 'demo'),
  port: Number(process.env.PORT ?? 0),
  print: false,
  handleSignals: false,
  logger: { level: 'warn', stream: process.stderr },
});
const { url } = server;
const { token, record } = await server.store.tokens.create({ scope: 'admin', name: `demo-${process.pid}` });
const auth = { authorization: `Bearer ${token}` };
step(`vmplane server listening on ${url} (data in .cache/demo)`);

const name = `vmplane-demo-${randomBytes(3).toString('hex')}`;
let failed = false;
try {
  step(`POST /api/vm/install {"os":"${os}","version":"${version}","name":"${name}"}: the stages, live`);
  const res = await fetch(`${url}/api/vm/install`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': name },
    body: JSON.stringify({ os, version, name }),
  });
  if (!res.ok || !res.body) throw new Error(`install refused: ${res.status} ${await res.text()}`);
  let ended = false;
  for await (const event of sse(res.body)) {
    if (event.event === 'close') break;
    const e = JSON.parse(event.data) as { step?: string; status?: string; message?: string };
    if (e.status === 'error') failed = true;
    if (e.message !== undefined) step(`  ${e.status?.padEnd(10) ?? ''} ${e.step ? `${e.step}: ` : ''}${e.message}`);
    ended = true;
  }
  if (!ended || failed) throw new Error('the install did not succeed');

  const command = ['sh', '-c', 'echo "hello from $(hostname), kernel $(uname -r)"'];
  const run = await exec(`${url.replace(/^http/, 'ws')}/instances/${name}/exec`, token, command);
  step(`exec ${JSON.stringify(command)} -> exit ${run.exitCode}: ${run.output.trim()}`);
  if (run.exitCode !== 0) failed = true;

  const list = (await (await fetch(`${url}/instances`, { headers: auth })).json()) as Array<{
    name: string;
    state: string;
    network?: { ip?: string };
  }>;
  for (const i of list) step(`  instance ${i.name}: ${i.state}${i.network?.ip ? `, ${i.network.ip}` : ''}`);

  // The token is the user's own, made for this run and revoked at its end: shown like `token create` shows one.
  console.log(`
The API is at ${url} (this run's admin token is revoked when the demo ends):
  export VMPLANE_URL=${url} VMPLANE_TOKEN=${token}
  curl -H "Authorization: Bearer $VMPLANE_TOKEN" $VMPLANE_URL/instances      # hypeman's API
  curl -H "Authorization: Bearer $VMPLANE_TOKEN" $VMPLANE_URL/api/vm/list    # go-pve-qemu's API
  npx vmplane list                                                            # the CLI
  ${url}/openapi.json describes every route.`);
  if (process.stdout.isTTY) {
    console.log('\nServing until Ctrl-C; the demo instance and token are removed then.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
} catch (error) {
  failed = true;
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  const del = await fetch(`${url}/instances/${name}`, { method: 'DELETE', headers: auth }).catch(() => undefined);
  step(`DELETE /instances/${name} -> ${del?.status ?? 'failed'}`);
  await server.store.tokens.revoke(record.id);
  await server.close();
  step('server closed');
}
process.exitCode = failed ? 1 : 0;

/** The events of a text/event-stream body. */
async function* sse(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const out: { event?: string; data: string } = { data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('data: ')) out.data += line.slice(6);
        else if (line.startsWith('event: ')) out.event = line.slice(7);
      }
      if (out.data || out.event) yield out;
    }
  }
}

/** hypeman's exec WebSocket: the command as the first text frame, output in binary frames, `{"exitCode":N}` last. */
function exec(wsUrl: string, bearer: string, command: string[]): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${bearer}` } });
    let output = '';
    ws.on('open', () => ws.send(JSON.stringify({ command, tty: false })));
    ws.on('message', (data, isBinary) => {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
      if (isBinary) output += text;
      else {
        const exit = JSON.parse(text) as { exitCode?: number };
        if (typeof exit.exitCode === 'number') {
          ws.close();
          resolve({ exitCode: exit.exitCode, output });
        }
      }
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`exec refused: ${res.statusCode}`)));
    ws.on('error', reject);
  });
}
