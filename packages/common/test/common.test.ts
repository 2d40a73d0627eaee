import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AbortError,
  ApiError,
  apiErrorFromStatus,
  backoffDelay,
  ConflictError,
  deadline,
  InvalidArgumentError,
  isBackendApiError,
  NotFoundError,
  PreconditionFailedError,
  path,
  query,
  REDACTED,
  redact,
  redactingLogger,
  redactText,
  ServerError,
  sleep,
  TimeoutError,
  ValidationError,
  VmplaneError,
} from '@vmplane/common';

describe('path tag', () => {
  test('encodes each value as one segment', () => {
    assert.equal(path`/1.0/instances/${'a b/c?d'}/snapshots/${'s%1'}`, '/1.0/instances/a%20b%2Fc%3Fd/snapshots/s%251');
    assert.equal(path`/nodes/${'pve1'}/qemu/${100}/status`, '/nodes/pve1/qemu/100/status');
  });
  test('refuses empty and dot segments', () => {
    for (const bad of ['', '.', '..']) assert.throws(() => path`/x/${bad}`, InvalidArgumentError);
  });
  test('query skips undefined and writes booleans as 1/0', () => {
    assert.equal(query({ a: 1, b: undefined, c: true, d: 'x y', e: ['p', 'q'] }), '?a=1&c=1&d=x+y&e=p&e=q');
    assert.equal(query({ a: undefined }), '');
  });
});

describe('error tree', () => {
  test('status picks the class, all under one root', () => {
    const cases: [number, new (...a: never[]) => ApiError][] = [
      [404, NotFoundError],
      [409, ConflictError],
      [412, PreconditionFailedError],
      [503, ServerError],
    ];
    for (const [status, cls] of cases) {
      const e = apiErrorFromStatus({ status, message: 'm', backend: 'lxd' });
      assert.ok(e instanceof cls);
      assert.ok(e instanceof ApiError);
      assert.ok(e instanceof VmplaneError);
      assert.ok(isBackendApiError(e, 'lxd'));
      assert.equal(isBackendApiError(e, 'proxmox'), false);
    }
    const v = apiErrorFromStatus({ status: 400, message: 'bad', errors: { vmid: 'too small' } });
    assert.ok(v instanceof ValidationError);
    assert.equal(v.errors.vmid, 'too small');
  });
});

describe('deadline', () => {
  test('a timeout and an abort are told apart', async () => {
    const t = deadline({ timeout: 10 });
    await new Promise((r) => t.signal.addEventListener('abort', r));
    assert.ok(t.reason() instanceof TimeoutError);
    t.dispose();
    const controller = new AbortController();
    const a = deadline({ signal: controller.signal, timeout: 10_000 });
    controller.abort();
    assert.ok(a.reason() instanceof AbortError);
    a.dispose();
  });
  test('sleep rejects with the signal reason', async () => {
    const controller = new AbortController();
    const p = sleep(10_000, controller.signal);
    controller.abort(new Error('stop'));
    await assert.rejects(p, /stop/);
  });
});

describe('backoff', () => {
  test('grows exponentially, is capped, and jitter stays within bounds', () => {
    const noJitter = { initial: 100, max: 1000, jitter: 0 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, noJitter)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(backoffDelay(2, { initial: 100, jitter: 1, random: () => 0 }), 0);
    assert.equal(backoffDelay(2, { initial: 100, jitter: 1, random: () => 1 }), 400);
  });
});

describe('redaction', () => {
  test('secret keys and secrets inside text are masked', () => {
    const out = redact({
      username: 'root@pam',
      password: 'hunter2',
      nested: { CSRFPreventionToken: 'abc', list: [{ ticket: 'PVE:root@pam:1234ABCD::sig' }] },
      url: 'https://x/api?password=hunter2&user=a',
      header: 'Cookie: PVEAuthCookie=PVE:root@pam:65A1B2C3::c2lnbmF0dXJl',
      auth: 'PVEAPIToken=root@pam!ci=0f1e2d3c-aaaa-bbbb',
    }) as Record<string, unknown>;
    const text = JSON.stringify(out);
    for (const secret of ['hunter2', 'abc"', 'c2lnbmF0dXJl', '0f1e2d3c-aaaa-bbbb', '::sig'])
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.equal(out.username, 'root@pam');
    assert.equal(out.password, REDACTED);
    assert.match(redactText('-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----'), /\[redacted\]/);
  });
  test('the redacting logger masks fields and messages', () => {
    const lines: string[] = [];
    const sink = (m: string, f?: unknown) => lines.push(`${m} ${JSON.stringify(f)}`);
    const logger = redactingLogger({ debug: sink, info: sink, warn: sink, error: sink });
    logger.info('login password=hunter2', { tokenSecret: 'shh', path: '/x' });
    assert.ok(!lines.join('').includes('hunter2') && !lines.join('').includes('shh'));
  });
});
