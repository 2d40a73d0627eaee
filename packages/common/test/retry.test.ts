import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConnectionError,
  checkCallOptions,
  deadline,
  FingerprintMismatchError,
  InvalidArgumentError,
  longTimer,
  multipartBody,
  parseRetryAfter,
  RateLimitedError,
  retry,
  retryDecision,
  ServerError,
  sleep,
  TimeoutError,
  withDeadline,
} from '@vmplane/common';

describe('Retry-After', () => {
  test('both forms: delta-seconds and HTTP-date', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Tue, 01 Dec 2026 10:00:30 GMT', now), 30);
    assert.equal(parseRetryAfter('Tuesday, 01-Dec-26 10:01:00 GMT', now), 60);
    assert.equal(parseRetryAfter('Tue, 01 Dec 2026 09:00:00 GMT', now), 0);
    for (const bad of [undefined, '', '-5', 'soon', '1e3', '2026-12-01'])
      assert.equal(parseRetryAfter(bad, now), undefined);
  });
});

describe('retry rule', () => {
  const lost = (sent: boolean) => new ConnectionError({ message: 'x', sent });
  test('what is retried and what is not', () => {
    const read = { idempotent: true };
    const write = { idempotent: false };
    assert.equal(retryDecision(lost(false), write), true);
    assert.equal(retryDecision(lost(true), write), false);
    assert.equal(retryDecision(lost(true), read), true);
    const pin = new FingerprintMismatchError({ message: 'm', expected: 'a', actual: 'b' });
    assert.equal(retryDecision(pin, read), false);
    assert.equal(retryDecision(new ServerError({ status: 503, message: 'm' }), read), true);
    assert.equal(retryDecision(new ServerError({ status: 503, message: 'm' }), write), false);
    assert.equal(retryDecision(new ServerError({ status: 500, message: 'm' }), read), false);
    assert.equal(retryDecision(new RateLimitedError({ status: 429, message: 'm', retryAfter: 2 }), read), 2000);
    assert.equal(retryDecision(new RateLimitedError({ status: 429, message: 'm', retryAfter: 600 }), read), false);
  });

  test('retry() makes exactly the attempts it is allowed and waits what the server asked', async () => {
    let calls = 0;
    const delays: number[] = [];
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new RateLimitedError({ status: 429, message: 'slow down', retryAfter: 0.01 });
        },
        {
          attempts: 4,
          decide: (e) => retryDecision(e, { idempotent: true }),
          onRetry: ({ delay }) => delays.push(delay),
        },
      ),
      RateLimitedError,
    );
    assert.equal(calls, 4);
    assert.deepEqual(delays, [10, 10, 10]);
    calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw lost(true);
        },
        { attempts: 5, decide: (e) => retryDecision(e, { idempotent: false }) },
      ),
      ConnectionError,
    );
    assert.equal(calls, 1, 'a mutation that may have been sent is never repeated');
  });
});

describe('call options', () => {
  test('bad timeouts and signals are refused before anything happens', async () => {
    for (const timeout of ['abc', -1, Number.NaN, null, {}]) {
      assert.throws(
        () => deadline({ timeout: timeout as number }),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'timeout',
      );
      let ran = false;
      await assert.rejects(
        withDeadline({ timeout: timeout as number }, 'lxd', async () => {
          ran = true;
        }),
        InvalidArgumentError,
      );
      assert.equal(ran, false);
    }
    assert.throws(() => checkCallOptions({ signal: 'x' as unknown as AbortSignal }), InvalidArgumentError);
    assert.doesNotThrow(() => checkCallOptions({ timeout: Number.POSITIVE_INFINITY }));
  });

  test("a timeout past setTimeout's 32-bit limit does not fire early", async () => {
    const d = deadline({ timeout: 2 ** 31 + 5 });
    const e = deadline({ timeout: 2 ** 40 });
    await sleep(30);
    assert.equal(d.signal.aborted, false);
    assert.equal(e.signal.aborted, false);
    d.dispose();
    e.dispose();
    let fired = false;
    const t = longTimer(2 ** 33, () => {
      fired = true;
    });
    await sleep(10);
    t.clear();
    assert.equal(fired, false);
  });

  test('a short timeout still fires, typed', async () => {
    const d = deadline({ timeout: 5 });
    await new Promise((ok) => d.signal.addEventListener('abort', ok, { once: true }));
    assert.ok(d.reason() instanceof TimeoutError);
    d.dispose();
  });
});

describe('multipart writer', () => {
  test('fields and files, laid out as RFC 7578 says, with the length known', async () => {
    const body = multipartBody([
      { name: 'content', data: 'iso' },
      { name: 'filename', filename: 'a "b".iso', data: Buffer.from('DATA') },
    ]);
    const boundary = body.contentType.split('boundary=')[1] ?? '';
    const chunks: Buffer[] = [];
    for await (const c of body.chunks) chunks.push(c);
    const text = Buffer.concat(chunks).toString();
    assert.equal(
      text,
      `--${boundary}\r\nContent-Disposition: form-data; name="content"\r\n\r\niso\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="filename"; filename="a \\"b\\".iso"\r\n` +
        `Content-Type: application/octet-stream\r\n\r\nDATA\r\n--${boundary}--\r\n`,
    );
    assert.equal(body.length, Buffer.byteLength(text));
  });
  test('CR, LF and NUL in names are refused', () => {
    for (const filename of ['a\r\nb.iso', 'x\n', 'nul\0']) {
      assert.throws(
        () => multipartBody([{ name: 'f', filename, data: 'x' }]),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'filename',
      );
    }
  });
});
