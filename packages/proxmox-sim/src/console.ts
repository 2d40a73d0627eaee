import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AuthError, type AuthInfo } from './auth.js';
import type { SimEnv } from './context.js';

const WS_PATH = /^\/api2\/json(\/nodes\/[^/]+(?:\/(?:qemu|lxc)\/\d+)?)\/vncwebsocket$/;

function reject(socket: Duplex, status: number, message: string): void {
  socket.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * The `vncwebsocket` endpoints: a websocket upgrade that needs normal authentication plus the
 * one-time `vncticket` handed out by vncproxy/termproxy for that port. A VNC session answers the
 * RFB banner; a terminal session speaks termproxy's framing (`user:ticket\n` then `0:LEN:DATA`)
 * and echoes what it is sent.
 */
export function attachConsoles(
  server: http.Server,
  env: SimEnv,
  authenticate: (req: http.IncomingMessage) => AuthInfo,
): { close(): void } {
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://sim');
    const m = WS_PATH.exec(url.pathname);
    if (!m) return reject(socket, 404, 'Not Found');
    try {
      authenticate(req);
    } catch (e) {
      return reject(socket, e instanceof AuthError ? e.status : 401, e instanceof Error ? e.message : 'No ticket');
    }
    const port = url.searchParams.get('port') ?? '';
    const vncticket = url.searchParams.get('vncticket') ?? '';
    const entry = env.state.vncTickets.get(port);
    if (!entry || entry.ticket !== vncticket || entry.path !== m[1] || entry.expires < env.state.now())
      return reject(socket, 401, 'Permission denied - invalid vncticket');
    env.state.vncTickets.delete(port); // one-time
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (entry.kind === 'vnc') {
        ws.send(Buffer.from('RFB 003.008\n'));
        ws.on('message', (data: Buffer) => ws.send(data));
        return;
      }
      let authed = false;
      ws.on('message', (raw: Buffer) => {
        const msg = raw.toString('utf8');
        if (!authed) {
          if (msg === `${entry.user}:${entry.ticket}\n`) {
            authed = true;
            ws.send('OK');
          } else ws.close(1008, 'authentication failed');
          return;
        }
        const data = /^0:(\d+):([\s\S]*)$/.exec(msg);
        if (data) ws.send(data[2] ?? '');
      });
    });
  });
  return {
    close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
