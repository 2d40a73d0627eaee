import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { ConnectionError, InvalidArgumentError, LxdClient } from '@vmplane/lxd';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';
import { SocketProxy } from './support/socket-proxy.js';

describe('console sessions own their connection', () => {
  let lxd: LxdClient;
  const name = uniqueName('console');

  before(async () => {
    lxd = await connect();
    await createInstance(lxd, name);
  });
  after(async () => {
    await removeInstance(lxd, name);
    lxd.close();
  });

  /** Reads the console until `text` shows, then leaves the loop; gives up (destroying it) after 10 s. */
  async function readUntil(output: AsyncIterable<unknown> & { destroy(): void }, text: string): Promise<string> {
    let seen = '';
    const timer = setTimeout(() => output.destroy(), 10_000);
    try {
      for await (const chunk of output) {
        seen += String(chunk);
        if (seen.includes(text)) break;
      }
    } finally {
      clearTimeout(timer);
    }
    return seen;
  }

  test('what is written is echoed; leaving the loop detaches, and then writes reject typed', async () => {
    const session = await lxd.instances.console.attach(name, { width: 100, height: 30 });
    const token = `tok${randomBytes(4).toString('hex')}`;
    await session.resize(120, 40);
    // The console is a terminal in canonical mode with nobody reading it: it echoes each line. What
    // is written right after attaching can be lost, so the line is written again until it shows.
    const writer = setInterval(() => void session.write(`${token}\r`).catch(() => {}), 300);
    try {
      assert.match(await readUntil(session.output, token), new RegExp(token));
    } finally {
      clearInterval(writer);
    }
    assert.equal(session.closed, true, 'leaving the loop did not close the session');
    await session.operation.settled({ timeout: 10_000 });
    await assert.rejects(session.write('more'), (e: unknown) => e instanceof ConnectionError && !e.sent);
    await assert.rejects(session.resize(80, 24), ConnectionError);
  });

  test('a cut connection ends the output with a ConnectionError', async () => {
    const proxy = await SocketProxy.start();
    const client = await LxdClient.connect({ socketPath: proxy.path });
    try {
      const session = await client.instances.console.attach(name);
      const reading = (async () => {
        for await (const _ of session.output) {
          // reading until the end
        }
      })();
      await session.write('\n');
      assert.ok(proxy.cutAll() >= 2);
      await assert.rejects(reading, ConnectionError);
      assert.equal(session.closed, true);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test('printing a session shows no websocket secret', async () => {
    const session = await lxd.instances.console.attach(name);
    try {
      const secrets = Object.values(session.operation.websocketSecrets());
      assert.ok(secrets.length >= 2);
      const printed = [
        inspect(session, { depth: Number.POSITIVE_INFINITY }),
        JSON.stringify(session),
        inspect(session.output, { depth: Number.POSITIVE_INFINITY }),
        String(session),
      ];
      for (const text of printed) for (const s of secrets) assert.equal(text.includes(s), false, text.slice(0, 200));
    } finally {
      session.close();
    }
  });

  test('bad input is refused before anything is sent', async () => {
    for (const opts of [{ width: 0 }, { height: -1 }, { width: 1.5 }, { width: 70_000 }, { type: 'tty' }]) {
      await assert.rejects(lxd.instances.console.attach(name, opts as never), InvalidArgumentError);
    }
    await assert.rejects(lxd.instances.console.attach('bad/name'), InvalidArgumentError);
    const session = await lxd.instances.console.attach(name);
    try {
      await assert.rejects(session.resize(0, 24), InvalidArgumentError);
      await assert.rejects(session.write(5 as never), InvalidArgumentError);
    } finally {
      session.close();
    }
  });
});
