import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InterruptionError } from '@vmplane/common';
import { AbortError, type LxdClient, TimeoutError } from '@vmplane/lxd';
import { connect, createInstance, removeInstance, uniqueName } from './support/lxd.js';

describe('recorded exec: aborted at any moment, it leaves no log files', () => {
  let lxd: LxdClient;
  const name = uniqueName('exec-rec');

  before(async () => {
    lxd = await connect();
    await createInstance(lxd, name);
  });
  after(async () => {
    await removeInstance(lxd, name);
    lxd.close();
  });

  const execLogs = async () => (await lxd.instances.logs.list(name)).filter((f) => f.startsWith('exec_'));

  /** Polls (bounded) until the instance's exec log files are gone and no marked command runs. */
  async function settledClean(tag: string): Promise<{ logs: string[]; running: number }> {
    let state = { logs: [] as string[], running: -1 };
    for (let i = 0; i < 150; i++) {
      const ps = await lxd.instances.exec(name, {
        command: ['sh', '-c', `ps -o args | grep -c "^[s]leep 0.${tag}"`],
      });
      state = { logs: await execLogs(), running: Number(ps.stdout.toString().trim()) };
      // The probe's own log files are removed before it returns, so any left belong to the aborted calls.
      if (state.logs.length === 0 && state.running === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return state;
  }

  test('aborts from before the POST leaves until after the command started', async () => {
    assert.deepEqual(await execLogs(), []);
    // Aborted on the same tick, after a turn of the event loop, and after growing delays: some
    // land before the POST leaves, some while it is in flight, some once the command runs.
    const moments = ['sync', 'immediate', 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] as const;
    const outcomes = await Promise.all(
      moments.map(async (moment, i) => {
        const controller = new AbortController();
        const call = lxd.instances.exec(name, {
          command: ['sh', '-c', `touch /tmp/ran-${i}; exec sleep 0.${700 + i}`],
          signal: controller.signal,
        });
        if (moment === 'sync') controller.abort();
        else if (moment === 'immediate') setImmediate(() => controller.abort());
        else setTimeout(() => controller.abort(), moment);
        return call.then(
          () => assert.fail(`the call aborted at ${moment} resolved`),
          (error: unknown) => error,
        );
      }),
    );
    for (const error of outcomes) assert.ok(error instanceof AbortError, String(error));
    const state = await settledClean('7');
    assert.deepEqual(state, { logs: [], running: 0 }, 'log files or commands are left');
    const ran = await lxd.instances.exec(name, { command: ['sh', '-c', 'ls /tmp | grep -c "^ran-"'] });
    const started = Number(ran.stdout.toString().trim());
    // The test means something only if some aborts came after LXD had the request.
    assert.ok(started > 0, 'no aborted command ever ran: the aborts all came too early to test this');
    const sent = outcomes.filter((e) => e instanceof InterruptionError && e.sent).length;
    assert.ok(sent >= started, `${started} commands ran, yet only ${sent} errors say the request was sent`);
  });

  test('a timeout during the POST, too', async () => {
    const outcomes = await Promise.all(
      [1, 3, 10, 30].map((timeout, i) =>
        lxd.instances.exec(name, { command: ['sh', '-c', `exec sleep 0.${800 + i}`], timeout }).then(
          () => undefined,
          (error: unknown) => error,
        ),
      ),
    );
    for (const error of outcomes) assert.ok(error instanceof TimeoutError, String(error));
    assert.deepEqual(await settledClean('8'), { logs: [], running: 0 }, 'log files or commands are left');
  });
});
