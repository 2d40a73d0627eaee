/**
 * The timing proxy's own process (see timing-proxy.ts): a transparent unix-socket proxy in front of
 * LXD's socket that times every HTTP exchange passing through. It runs apart from the bench so that
 * forwarding never competes with our client for its event loop.
 *
 *   argv: <listen socket path> <LXD socket path>; IPC: { id, op: 'take' } -> { id, exchanges }
 */
import { unlinkSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { ConnectionTimer, type Exchange } from './http-timing.js';

const [listenPath, target] = process.argv.slice(2);
if (!listenPath || !target || !process.send) {
  process.stderr.write('usage: forked with <listen path> <LXD socket path>\n');
  process.exit(2);
}

// Epoch ms at sub-millisecond precision: the bench's own clock agrees within ~0.05 ms, so that its
// times can be set against the proxy's.
const now = () => performance.timeOrigin + performance.now();
const finished: Exchange[] = [];
const timers = new Set<ConnectionTimer>();
const sockets = new Set<Socket>();
/** Exchanges that started before the last take belong to an earlier operation: not reported again. */
let since = 0;
let conns = 0;

// Half-open both ways, and ends passed on by pipe(): a side that closes never takes bytes still
// buffered for the other with it. Only an error destroys the pair.
const server = createServer({ allowHalfOpen: true }, (client) => {
  const conn = ++conns;
  const upstream = createConnection({ path: target, allowHalfOpen: true });
  const timer = new ConnectionTimer(conn, now, (x) => finished.push(x));
  timers.add(timer);
  sockets.add(client).add(upstream);
  // Nagle off both ways, as LXD and the clients have it: the proxy must not hold small writes back.
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.on('data', (chunk: Buffer) => timer.fromClient(chunk));
  upstream.on('data', (chunk: Buffer) => timer.fromServer(chunk));
  client.pipe(upstream);
  upstream.pipe(client);
  let open = 2;
  const closed = () => {
    if (--open > 0) return;
    timer.closed();
    timers.delete(timer);
    sockets.delete(client);
    sockets.delete(upstream);
  };
  const fail = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', fail).once('close', closed);
  upstream.on('error', fail).once('close', closed);
});

server.on('error', (error) => {
  process.stderr.write(`timing proxy: ${String(error)}\n`);
  process.exit(1);
});

server.listen(listenPath, () => process.send?.({ ready: true }));

process.on('message', (msg: { id: number; op: string }) => {
  if (msg.op !== 'take') return;
  const open = [...timers].flatMap((t) => t.open()).map((x) => ({ ...x }));
  const exchanges = [...finished, ...open].filter((x) => x.start >= since).sort((a, b) => a.start - b.start);
  finished.length = 0;
  since = now();
  process.send?.({ id: msg.id, exchanges });
});

// The bench went away (or closed the channel): close everything and leave.
process.on('disconnect', () => {
  for (const s of sockets) s.destroy();
  server.close();
  try {
    unlinkSync(listenPath);
  } catch {}
  process.exit(0);
});
