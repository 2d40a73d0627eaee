import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { ConnectionError, InvalidArgumentError, LxdClient, VmplaneError } from '@vmplane/lxd';
import { EventOverflowError } from '../src/events.js';
import { connect, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

/** A proxy in front of LXD whose connections can be frozen: bytes stop flowing, nothing closes. */
class FreezingProxy {
  readonly path: string;
  private readonly server: Server;
  private readonly pairs: Array<[Socket, Socket]> = [];

  private constructor(
    private readonly dir: string,
    target: string,
  ) {
    this.path = join(dir, 'lxd.socket');
    this.server = createServer((client) => {
      const upstream = createConnection(target);
      this.pairs.push([client, upstream]);
      client.pipe(upstream);
      upstream.pipe(client);
      for (const s of [client, upstream]) s.on('error', () => {});
    });
  }

  static async start(target = '/var/lib/lxd/unix.socket'): Promise<FreezingProxy> {
    const proxy = new FreezingProxy(await mkdtemp(join(tmpdir(), 'vmpt-freeze-')), target);
    await new Promise<void>((resolve) => proxy.server.listen(proxy.path, resolve));
    return proxy;
  }

  freeze(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) for (const s of pair) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Reads a stream to its end, whatever the daemon sends meanwhile. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // other clients' events may come; only the ending matters here
  }
}

describe('events: a bounded buffer and typed endings', () => {
  let lxd: LxdClient;
  const profile = uniqueName('events-buf');

  before(async () => {
    lxd = await connect();
    await lxd.profiles.create({ name: profile });
  });
  after(async () => {
    await lxd.profiles.delete(profile).catch((e) => console.error(e));
    lxd.close();
  });

  /** Makes `count` lifecycle events (profile updates), each answered before the next. */
  async function produce(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await lxd.profiles.patch(profile, { config: { 'user.tick': String(i) } });
  }

  test('a stalled reader gets the events kept, then EventOverflowError, and the stream is closed', async () => {
    const limit = 5;
    const stream = lxd.events({ types: ['lifecycle'], maxBuffered: limit });
    try {
      await stream.ready();
      const iterator = stream[Symbol.asyncIterator]();
      // The reader takes one event, then stalls while many more are made.
      const first = iterator.next();
      await produce(1);
      assert.equal((await first).done, false);
      await produce(limit * 3);
      for (let i = 0; i < 100 && stream.buffered < limit; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stream.buffered, limit, 'the buffer grew past its cap');
      const kept: string[] = [];
      for (let i = 0; i < limit; i++) {
        const r = await iterator.next();
        assert.equal(r.done, false);
        if (!r.done && r.value.type === 'lifecycle') kept.push(r.value.metadata.action);
      }
      assert.equal(kept.length, limit);
      await assert.rejects(
        iterator.next(),
        (e: unknown) => e instanceof EventOverflowError && e instanceof VmplaneError && e.limit === limit,
      );
      assert.deepEqual(await iterator.next(), { value: undefined, done: true });
    } finally {
      stream.close();
    }
  });

  test('a reader that keeps up never overflows, however many events pass', async () => {
    // (Other clients of the daemon make events too, in bursts: the cap leaves room for those.)
    const stream = lxd.events({ types: ['lifecycle'], maxBuffered: 20 });
    try {
      await stream.ready();
      let seen = 0;
      const reading = (async () => {
        for await (const event of stream) {
          if (event.type === 'lifecycle' && event.metadata.source.endsWith(`/profiles/${profile}`)) seen++;
          if (seen === 60) return;
        }
      })();
      for (let i = 0; i < 60; i++) {
        await produce(1);
        // One event at a time: the reader drains each before the next is made.
        for (let j = 0; j < 100 && stream.buffered > 0; j++) await new Promise((r) => setTimeout(r, 10));
      }
      await reading;
      assert.equal(seen, 60);
    } finally {
      stream.close();
    }
  });

  test('printing a stream shows its state, not its connection', async () => {
    const stream = lxd.events();
    try {
      await stream.ready();
      assert.deepEqual(JSON.parse(JSON.stringify(stream)), { reconnects: 0, buffered: stream.buffered, closed: false });
      assert.match(inspect(stream, { depth: Number.POSITIVE_INFINITY }), /^EventStream \{ reconnects: 0/);
    } finally {
      stream.close();
    }
  });

  test('bad options are refused', () => {
    for (const maxBuffered of [0, -1, 1.5, Number.NaN, '10' as never]) {
      assert.throws(() => lxd.events({ maxBuffered }), InvalidArgumentError);
    }
    assert.throws(() => lxd.events({ pingInterval: -5 }), InvalidArgumentError);
    assert.throws(() => lxd.events({ signal: {} as never }), InvalidArgumentError);
  });

  test('with reconnect: false, a dropped connection rejects with a ConnectionError', async () => {
    const proxy = await SocketProxy.start();
    const client = await LxdClient.connect({ socketPath: proxy.path });
    const stream = client.events({ reconnect: false });
    try {
      await stream.ready();
      const reading = drain(stream);
      assert.ok(proxy.cutAll() >= 1);
      await assert.rejects(reading, (e: unknown) => e instanceof ConnectionError && e.sent && /lost/.test(e.message));
      assert.deepEqual(await stream.next(), { value: undefined, done: true });
    } finally {
      stream.close();
      client.close();
      await proxy.close();
    }
  });

  test('with reconnect: false, a connection gone silent is noticed by its pings: ConnectionError', async () => {
    const proxy = await FreezingProxy.start();
    const client = await LxdClient.connect({ socketPath: proxy.path });
    const stream = client.events({ reconnect: false, pingInterval: 100 });
    try {
      await stream.ready();
      const reading = drain(stream);
      proxy.freeze();
      await assert.rejects(reading, (e: unknown) => e instanceof ConnectionError && /pings/.test(e.message));
    } finally {
      stream.close();
      client.close();
      await proxy.close();
    }
  });
});
