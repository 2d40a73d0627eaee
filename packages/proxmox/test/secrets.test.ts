import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ConnectionError,
  OperationFailedError,
  ProxmoxClient,
  ServerError,
  TfaRequiredError,
  type TicketAuth,
  TimeoutError,
  UnauthorizedError,
  ValidationError,
} from '@vmplane/proxmox';
import { assertNoSecrets, printed, serialiseError, thrown } from '../../common/test/support/printed.js';
import { capturingLogger, passwordClient, sim, tokenClient, violations } from './sim.js';

test('no password, ticket, CSRF token, token secret or VNC ticket in any error, log line or printed object', async () => {
  const password = 'pw-Secret-7f3a9c';
  const tokenSecret = '5b0c7e0e-6d1f-4d8a-9f37-0c2a4e51b7d3';
  const s = await sim({
    nodes: 2,
    guests: [
      { vmid: 100, node: 'pve1', status: 'running', config: { agent: '1' } },
      { vmid: 101, node: 'pve1', status: 'stopped' },
    ],
    rootPassword: password,
    tokenSecret,
    users: [{ userid: 'alice@pve', password: 'pw-Alice-TFA-31337', tfa: { totp: '123456' } }],
  });
  assert.equal(s.credentials.password, password);
  assert.equal(s.credentials.tokenSecret, tokenSecret);
  const logger = capturingLogger();
  const errors: unknown[] = [];
  const pve = passwordClient(s, { logger, retry: { attempts: 3, initial: 1, max: 2 } });
  const tok = tokenClient(s, { logger, retry: { attempts: 3, initial: 1, max: 2 } });
  const auth = pve.transport.auth as TicketAuth;

  // A working session: the secrets to look for.
  await pve.nodes.list();
  const first = auth.session;
  assert.ok(first?.ticket && first.csrf);
  const secrets = new Set([password, tokenSecret, 'pw-Alice-TFA-31337', first.ticket, first.csrf]);

  // 400 with the per-parameter map, from a ticket session (a write: CSRF token sent).
  errors.push(await thrown(() => pve.qemu('pve1', 100).updateConfig({ cores: 0 })));
  assert.ok(errors.at(-1) instanceof ValidationError);
  s.violations.length = 0; // refused on purpose

  // Retried 503s on a read (warn lines), ending in a ServerError.
  s.faults.failNext('/version', { times: 5, status: 503 });
  errors.push(await thrown(() => pve.cluster.version()));
  assert.ok(errors.at(-1) instanceof ServerError);

  // A write whose connection was dropped: a ConnectionError, not retried.
  s.faults.dropNext('/nodes/{node}/qemu/{vmid}/status/start');
  errors.push(await thrown(() => pve.qemu('pve1', 101).start()));
  assert.ok(errors.at(-1) instanceof ConnectionError);

  // A timeout mid-call.
  s.faults.latency = 200;
  errors.push(await thrown(() => pve.nodes.list({ fresh: true, timeout: 20 })));
  assert.ok(errors.at(-1) instanceof TimeoutError);
  s.faults.latency = 0;

  // The server stops accepting the ticket: a re-login (logged), then a failed task.
  s.faults.expireTickets();
  s.faults.failNextTask('qmstart', 'start failed: disk full');
  const task = await pve.qemu('pve1', 101).start();
  errors.push(await thrown(() => task.wait()));
  assert.ok(errors.at(-1) instanceof OperationFailedError);
  const second = auth.session;
  assert.ok(second && second.ticket !== first.ticket);
  secrets.add(second.ticket).add(second.csrf);

  // A VNC one-time ticket used twice.
  const vm = pve.qemu('pve1', 100);
  const proxy = await vm.vncProxy();
  secrets.add(proxy.ticket);
  (await vm.vncWebSocket(proxy)).close();
  errors.push(await thrown(() => vm.vncWebSocket(proxy)));
  assert.ok(errors.at(-1) instanceof UnauthorizedError);

  // The API token client: a 503 on a read and a refused write.
  s.faults.failNext('/cluster/resources', { times: 5, status: 503 });
  errors.push(await thrown(() => tok.cluster.resources({ fresh: true })));
  s.faults.failNext('/nodes/{node}/qemu/{vmid}/status/stop', { status: 500, message: 'internal error' });
  errors.push(await thrown(() => tok.qemu('pve1', 100).stop()));

  // Wrong credentials of every kind.
  const wrongPassword = new ProxmoxClient({ baseUrl: s.url, username: 'root@pam', password: `${password}x`, logger });
  errors.push(await thrown(() => wrongPassword.nodes.list()));
  assert.ok(errors.at(-1) instanceof UnauthorizedError);
  wrongPassword.close();
  const wrongToken = new ProxmoxClient({
    baseUrl: s.url,
    tokenId: s.credentials.tokenId,
    tokenSecret: `${tokenSecret}x`,
    logger,
  });
  errors.push(await thrown(() => wrongToken.nodes.list()));
  assert.ok(errors.at(-1) instanceof UnauthorizedError);
  wrongToken.close();
  const tfa = new ProxmoxClient({ baseUrl: s.url, username: 'alice@pve', password: 'pw-Alice-TFA-31337', logger });
  errors.push(await thrown(() => tfa.nodes.list()));
  assert.ok(errors.at(-1) instanceof TfaRequiredError);
  tfa.close();
  // A server that is not there at all.
  const nowhere = new ProxmoxClient({
    baseUrl: 'http://127.0.0.1:9',
    tokenId: s.credentials.tokenId,
    tokenSecret,
    logger,
    retry: { attempts: 2, initial: 1, max: 2 },
  });
  errors.push(await thrown(() => nowhere.nodes.list()));
  assert.ok(errors.at(-1) instanceof ConnectionError);
  nowhere.close();

  assert.equal(errors.length, 12);

  // The public objects themselves, idle and with requests in flight, and a console open.
  const printedObjects: [string, string][] = [];
  const print = (...items: Array<[string, unknown]>) => {
    for (const [where, o] of items) printedObjects.push([where, printed(o, { callGetters: true })]);
  };
  const collect = (when: string) => {
    const vm100 = pve.qemu('pve1', 100);
    print(
      [`${when} password client`, pve],
      [`${when} password transport`, pve.transport],
      [`${when} ticket auth`, pve.transport.auth],
      [`${when} token client`, tok],
      [`${when} token transport`, tok.transport],
      [`${when} token auth`, tok.transport.auth],
      [`${when} tasks`, pve.tasks],
      [`${when} task`, task],
      [`${when} cluster`, pve.cluster],
      [`${when} nodes`, pve.nodes],
      [`${when} node`, pve.node('pve1')],
      [`${when} storage`, pve.node('pve1').storage('local')],
      [`${when} vm`, vm100],
      [`${when} agent`, vm100.agent],
      [`${when} snapshots`, vm100.snapshots],
      [`${when} cache`, pve.cache],
      [`${when} stats`, pve.stats],
    );
  };
  collect('idle');
  s.faults.latency = 150;
  const inFlight = [
    pve.nodes.list({ fresh: true }),
    pve.qemu('pve1', 101).updateConfig({ description: 'in flight' }),
    tok.cluster.resources({ fresh: true }),
  ];
  await new Promise((r) => setTimeout(r, 50));
  collect('in flight');
  await Promise.all(inFlight);
  s.faults.latency = 0;
  const consoleProxy = await vm.vncProxy();
  secrets.add(consoleProxy.ticket);
  const conn = await vm.vncWebSocket(consoleProxy);
  print(['open console', conn]);
  const view = await pve.cluster.view({ fresh: true });
  print(['cluster view', view]);
  conn.close();
  await view.enriched;
  assert.ok(
    logger.lines.some((l) => l.startsWith('warn ')),
    'retries were logged',
  );
  assert.ok(
    logger.lines.some((l) => l.startsWith('info ')),
    're-login was logged',
  );
  const haystacks: [string, string][] = [
    ...errors.map((e, i): [string, string] => [
      `error ${i}`,
      `${serialiseError(e)}\n${printed(e, { callGetters: true })}`,
    ]),
    ...printedObjects,
    ['logs', logger.lines.join('\n')],
  ];
  assertNoSecrets(haystacks, secrets, { showText: true });
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
