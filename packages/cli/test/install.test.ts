/**
 * `vmplane install` against a scripted server on loopback: the request it sends, the exit code it
 * derives from the stream, resuming a dropped stream, and Ctrl-C cancelling with undo.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '../src/client.js';
import { followInstall } from '../src/commands/install.js';
import { createStageRenderer } from '../src/render/stages.js';
import { runCli } from './support/io.js';
import { FAILED_INSTALL, nativeSse, type Recorded, Sink, SUCCESSFUL_INSTALL, sse } from './support/recorded.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
type Handler = (req: Seen, res: ServerResponse) => void;

let handler: Handler = (_req, res) => res.writeHead(500).end();
const seen: Seen[] = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => {
    body += c.toString('utf8');
  });
  req.on('end', () => {
    const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
    seen.push(s);
    handler(s, res);
  });
});
let url = '';
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'x-operation-id': 'op_123' };
const noDelay = () => Promise.resolve();

describe('vmplane install', () => {
  it("posts go-pve-qemu's body with a bearer token and an Idempotency-Key, prints the stages, exits 0", async () => {
    seen.length = 0;
    handler = (_req, res) => res.writeHead(200, SSE_HEADERS).end(sse(SUCCESSFUL_INSTALL));
    const r = await runCli(
      [
        'install',
        '--os',
        'debian',
        '--version',
        '12',
        '--name',
        'web',
        '--cpu',
        '2',
        '--ram',
        '1024',
        '--disk',
        '20',
        '--user',
        'ops',
      ],
      { VMPLANE_URL: url, VMPLANE_TOKEN: 'vmp_tok' },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(seen.length, 1);
    const req = seen[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/api/vm/install');
    assert.equal(req.headers.authorization, 'Bearer vmp_tok');
    assert.match(String(req.headers['idempotency-key']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(JSON.parse(req.body), {
      os: 'debian',
      version: '12',
      name: 'web',
      cpu: 2,
      ram: 1024,
      disk: '20G',
      user: 'ops',
    });
    assert.match(r.stdout, /^\[\*\] start VM installation\n/);
    assert.match(r.stdout, /\[VM initialization > finalizing\] \[\*\] IP: 127\.77\.0\.101\n$/);
  });

  it('exits 1 when the stream ends with an error event', async () => {
    handler = (_req, res) => res.writeHead(200, SSE_HEADERS).end(sse(FAILED_INSTALL));
    const r = await runCli(['install', '--os', 'debian', '--version', '12'], { VMPLANE_URL: url });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /\[rollback > lxd\.instance\] \[\+\] rollback > lxd\.instance/);
  });

  it('exits 1 on a refusal before the stream (400 with a JSON message)', async () => {
    handler = (_req, res) =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end('{"success":false,"message":"please check your input: os"}');
    const r = await runCli(['install', '--os', 'plan9', '--version', '4'], { VMPLANE_URL: url });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: please check your input: os\n');
  });

  it('sends the password read from stdin in the body and never prints it', async () => {
    seen.length = 0;
    handler = (_req, res) => res.writeHead(200, SSE_HEADERS).end(sse(SUCCESSFUL_INSTALL));
    const { PassThrough } = await import('node:stream');
    const stdin = new PassThrough();
    stdin.end('s3cr3t-Pa55\n');
    const out = new Sink();
    const { buildProgram } = await import('../src/program.js');
    let code = -1;
    const io = { stdin, stdout: out, stderr: out, env: { VMPLANE_URL: url }, signals: new EventEmitter() };
    await buildProgram(io as never, (c) => {
      code = c;
    }).parseAsync(['install', '--os', 'debian', '--version', '12', '--passwd-stdin'], { from: 'user' });
    assert.equal(code, 0);
    assert.equal(JSON.parse(seen[0]!.body).passwd, 's3cr3t-Pa55');
    assert.ok(!out.text.includes('s3cr3t'), 'the password is not printed');
  });

  it('resumes a dropped stream with Last-Event-ID from the operation, missing nothing', async () => {
    seen.length = 0;
    const first = SUCCESSFUL_INSTALL.slice(0, 4);
    const rest = SUCCESSFUL_INSTALL.slice(4);
    handler = (req, res) => {
      if (req.url === '/api/vm/install') {
        // Four events, then the connection drops without the close event.
        res.writeHead(200, SSE_HEADERS);
        res.write(sse(first, { close: false }));
        setTimeout(() => res.destroy(), 20);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(nativeSse('op_123', rest, 5));
    };
    const out = new Sink();
    const notes = new Sink();
    const result = await followInstall({
      client: new Client(url, 'vmp_tok'),
      body: { os: 'debian', version: '12' },
      renderer: createStageRenderer(out, { notes }),
      signals: new EventEmitter() as never,
      delay: noDelay,
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.vmId, 101);
    assert.equal(result.ip, '127.77.0.101');
    assert.equal(seen.length, 2);
    assert.equal(seen[1]!.url, '/v1/operations/op_123/events');
    assert.equal(seen[1]!.headers['last-event-id'], '4');
    assert.equal(seen[1]!.headers.authorization, 'Bearer vmp_tok');
    const lines = out.text.trimEnd().split('\n');
    assert.equal(lines.length, SUCCESSFUL_INSTALL.length, 'every event printed once');
    assert.match(notes.text, /the stream dropped; reconnecting/);
  });

  it('without an operation id, resumes by posting the same body with the same Idempotency-Key', async () => {
    seen.length = 0;
    handler = (_req, res) => {
      if (seen.length === 1) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(sse(SUCCESSFUL_INSTALL.slice(0, 2), { close: false }));
        setTimeout(() => res.destroy(), 20);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(sse(SUCCESSFUL_INSTALL.slice(2), { firstId: 3 }));
    };
    const result = await followInstall({
      client: new Client(url, undefined),
      body: { os: 'debian', version: '12' },
      renderer: createStageRenderer(new Sink()),
      signals: new EventEmitter() as never,
      delay: noDelay,
    });
    assert.equal(result.exitCode, 0);
    assert.equal(seen.length, 2);
    assert.equal(seen[1]!.url, '/api/vm/install');
    assert.equal(seen[1]!.headers['idempotency-key'], seen[0]!.headers['idempotency-key']);
    assert.equal(seen[1]!.headers['last-event-id'], '2');
    assert.equal(seen[1]!.body, seen[0]!.body);
  });

  it('Ctrl-C posts a cancel, shows the undo events, and exits 130', async () => {
    seen.length = 0;
    let stream: ServerResponse | undefined;
    const undo: Recorded[] = [
      {
        step: 'VM creation > creating VM',
        status: 'processing',
        message: '[-] VM creation > creating VM: the operation was cancelled',
      },
      { step: 'rollback > lxd.instance', status: 'processing', message: '[*] start rollback > lxd.instance' },
      { step: 'rollback > lxd.instance', status: 'success', message: '[+] rollback > lxd.instance (0.10s)' },
      {
        step: 'VM creation > creating VM',
        status: 'error',
        message: '[-] VM creation > creating VM: the operation was cancelled',
      },
    ];
    const signals = new EventEmitter();
    handler = (req, res) => {
      if (req.url === '/api/vm/install') {
        stream = res;
        res.writeHead(200, SSE_HEADERS);
        res.write(
          sse([{ step: 'VM creation > creating VM', status: 'processing', message: '[*] VM creation' }], {
            close: false,
          }),
        );
        // The user presses Ctrl-C once the first stage shows.
        setTimeout(() => signals.emit('SIGINT'), 20);
        return;
      }
      if (req.url === '/v1/operations/op_123/cancel' && req.method === 'POST') {
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"id":"op_123","status":"running"}');
        stream?.end(sse(undo, { firstId: 2 }));
        return;
      }
      res.writeHead(404).end();
    };
    const out = new Sink();
    const result = await followInstall({
      client: new Client(url, 'vmp_tok'),
      body: { os: 'debian', version: '12' },
      renderer: createStageRenderer(out),
      signals: signals as never,
      delay: noDelay,
    });
    assert.equal(result.exitCode, 130);
    assert.equal(result.operationId, 'op_123');
    assert.ok(
      seen.some((s) => s.url === '/v1/operations/op_123/cancel' && s.headers.authorization === 'Bearer vmp_tok'),
    );
    assert.match(out.text, /cancel requested/);
    assert.match(out.text, /\[rollback > lxd\.instance\] \[\+\] rollback > lxd\.instance/);
    assert.equal(signals.listenerCount('SIGINT'), 0, 'the handler is removed afterwards');
  });
});
