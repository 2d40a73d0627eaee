import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LxdClient, type LxdEvent, type ReconnectInfo } from '@vmplane/lxd';
import { connect, createInstance, IMAGE_ALIAS, removeInstance, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

/** Reads events until `want` has matched each of `actions` for `name`, or the deadline. */
async function collectLifecycle(stream: AsyncIterable<LxdEvent>, name: string, actions: string[]): Promise<string[]> {
  const seen: string[] = [];
  for await (const event of stream) {
    if (event.type !== 'lifecycle' || !event.metadata.source.endsWith(`/instances/${name}`)) continue;
    seen.push(event.metadata.action);
    if (actions.every((a) => seen.includes(a))) break;
  }
  return seen;
}

describe('events', () => {
  let lxd: LxdClient;
  before(async () => {
    lxd = await connect();
  });
  after(() => lxd.close());

  test('the stream sees lifecycle events for create, start and stop', async () => {
    const name = uniqueName('events');
    const stream = lxd.events({ types: ['lifecycle'] });
    try {
      await stream.ready();
      const seen = collectLifecycle(stream, name, ['instance-created', 'instance-started', 'instance-stopped']);
      await createInstance(lxd, name);
      await lxd.instances.stop(name, { force: true });
      const actions = await seen;
      assert.deepEqual(
        actions.filter((a) => ['instance-created', 'instance-started', 'instance-stopped'].includes(a)),
        ['instance-created', 'instance-started', 'instance-stopped'],
      );
    } finally {
      stream.close();
      await removeInstance(lxd, name);
    }
  });

  test('operation events carry the operation, and leaving the loop closes the websocket', async () => {
    const name = uniqueName('opev');
    const stream = lxd.events({ types: ['operation'] });
    await stream.ready();
    try {
      const op = await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS });
      let sawOurs = false;
      for await (const event of stream) {
        if (event.type === 'operation' && event.metadata.id === op.id) {
          sawOurs = true;
          break;
        }
      }
      assert.ok(sawOurs);
      await op.wait();
      // The loop's break closed the stream: it is finished for good.
      assert.deepEqual(await stream.next(), { value: undefined, done: true });
    } finally {
      await removeInstance(lxd, name);
    }
  });

  test('a dropped connection is reconnected with backoff, says so, and events flow again', async () => {
    const proxy = await SocketProxy.start();
    const viaProxy = await LxdClient.connect({ socketPath: proxy.path });
    const reconnects: ReconnectInfo[] = [];
    const stream = viaProxy.events({
      types: ['lifecycle'],
      backoff: { initial: 50, max: 200 },
      onReconnect: (info) => reconnects.push(info),
    });
    const name = uniqueName('reconn');
    try {
      await stream.ready();
      assert.ok(proxy.cutAll() >= 1);
      // Wait until the stream has reconnected before making the event it must see.
      for (let i = 0; i < 200 && reconnects.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(reconnects[0]?.attempt, 1);
      const seen = (async () => {
        for await (const event of stream) {
          if (event.type === 'lifecycle' && event.metadata.source.endsWith(`/instances/${name}`))
            return [event.metadata.action];
        }
        return [] as string[];
      })();
      // Events made while the stream reconnects may be missed; keep making them until one is seen.
      const maker = (async () => {
        await (await lxd.instances.createFromImage(name, { alias: IMAGE_ALIAS })).wait();
      })();
      await maker;
      const actions = await Promise.race([
        seen,
        (async () => {
          for (let i = 0; i < 50; i++) {
            await new Promise((r) => setTimeout(r, 100));
            await lxd.instances.patch(name, { config: { 'user.tick': String(i) } });
          }
          return [] as string[];
        })(),
      ]);
      assert.ok(actions.length > 0, 'no event arrived after the reconnection');
      assert.ok(stream.reconnects >= 1);
    } finally {
      stream.close();
      viaProxy.close();
      await proxy.close();
      await removeInstance(lxd, name);
    }
  });
});
