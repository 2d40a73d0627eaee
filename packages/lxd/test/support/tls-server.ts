import { mkdtemp, rm } from 'node:fs/promises';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificate } from './certs.js';

/**
 * An HTTPS server on 127.0.0.1 with a fresh self-signed certificate that counts what reaches it:
 * TCP connections, finished TLS handshakes, HTTP requests and upgrade requests. Requests get an
 * LXD-shaped answer; upgrades are refused.
 */
export interface CountingTlsServer {
  url: string;
  /** PEM of the server's certificate. */
  certificate: string;
  connections: number;
  handshakes: number;
  requests: string[];
  upgrades: string[];
  close(): Promise<void>;
}

export async function startCountingTlsServer(): Promise<CountingTlsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'vmpt-tlssrv-'));
  let made: Awaited<ReturnType<typeof makeCertificate>>;
  try {
    made = await makeCertificate(dir, '127.0.0.1', { san: 'IP:127.0.0.1' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const server = https.createServer({ cert: made.cert, key: made.key }, (req, res) => {
    state.requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ type: 'sync', status_code: 200, metadata: { auth: 'untrusted', api_extensions: [] } }));
  });
  server.on('connection', () => state.connections++);
  server.on('secureConnection', () => state.handshakes++);
  server.on('upgrade', (req, socket) => {
    state.upgrades.push(`${req.method} ${req.url}`);
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const state: CountingTlsServer = {
    url: `https://127.0.0.1:${port}`,
    certificate: made.cert,
    connections: 0,
    handshakes: 0,
    requests: [],
    upgrades: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}
