import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { CancelledError, InvalidRequestError } from '../src/errors.js';
import { parseImage } from '../src/providers/lxd/images.js';
import { inSubnet, parseCpuLimit, parseMemoryLimit, sha512Crypt, stateOf } from '../src/providers/lxd/index.js';
import { LxdGuestProcess } from '../src/providers/lxd/process.js';
import { changeKind, lifecycleTarget } from '../src/providers/lxd/watch.js';

test('LXD status → InstanceState, as STATES.md has it', () => {
  const table: [string, boolean, string][] = [
    ['Running', false, 'Running'],
    ['Ready', false, 'Running'],
    ['Thawed', false, 'Running'],
    ['Stopped', false, 'Stopped'],
    ['Stopped', true, 'Standby'],
    ['Frozen', false, 'Paused'],
    ['Freezing', false, 'Paused'],
    ['Starting', false, 'Initializing'],
    ['Pending', false, 'Initializing'],
    ['Created', false, 'Created'],
    ['Stopping', false, 'Shutdown'],
    ['Aborting', false, 'Shutdown'],
    ['Error', false, 'Unknown'],
    ['Something new', false, 'Unknown'],
  ];
  for (const [status, stateful, expected] of table) assert.equal(stateOf(status, stateful), expected, status);
});

test('limits: CPU counts and sets, memory sizes in LXD units and shares of the host', () => {
  assert.equal(parseCpuLimit('2'), 2);
  assert.equal(parseCpuLimit('0-3'), 4);
  assert.equal(parseCpuLimit('1,3,5-7'), 5);
  assert.equal(parseCpuLimit(''), undefined);
  assert.equal(parseCpuLimit('two'), undefined);
  assert.equal(parseMemoryLimit('512MiB'), 512 * 2 ** 20);
  assert.equal(parseMemoryLimit('1GB'), 1e9);
  assert.equal(parseMemoryLimit('1073741824'), 2 ** 30);
  assert.equal(parseMemoryLimit('50%', 8 * 2 ** 30), 4 * 2 ** 30);
  assert.equal(parseMemoryLimit('50%'), undefined);
  assert.equal(parseMemoryLimit('lots'), undefined);
});

test('image references: remote:alias, os-version, aliases and fingerprints', () => {
  const options = {
    name: 'lxd',
    imageServers: { images: { url: 'https://images.example', protocol: 'simplestreams' as const } },
  };
  assert.deepEqual(parseImage('images:debian/12', options), {
    remote: { name: 'images', server: options.imageServers.images, alias: 'debian/12' },
    local: [],
    alias: 'debian/12',
  });
  assert.deepEqual(parseImage('debian-12', options), { local: ['debian-12', 'debian/12'], alias: 'debian/12' });
  assert.deepEqual(parseImage('vmplane-busybox', options), { local: ['vmplane-busybox'], alias: 'vmplane-busybox' });
  // A prefix that is no configured remote is part of a local alias.
  assert.deepEqual(parseImage('other:thing', options), { local: ['other:thing'], alias: 'other:thing' });
  assert.throws(() => parseImage('images:', options), InvalidRequestError);
  assert.throws(() => parseImage('', options), InvalidRequestError);
});

test('inSubnet reads LXD bridge addresses (gateway/prefix) and refuses the gateway', () => {
  assert.equal(inSubnet('10.1.2.50', '10.1.2.1/24'), true);
  assert.equal(inSubnet('10.1.3.50', '10.1.2.1/24'), false);
  assert.equal(inSubnet('10.1.2.1', '10.1.2.1/24'), false);
  assert.equal(inSubnet('10.1.2.50', 'auto'), true);
});

test('sha512Crypt matches openssl passwd -6, the password given on stdin', () => {
  for (const [password, salt] of [
    ['S3cret-pw!', 'abcdefgh'],
    ['a'.repeat(100), '0123456789abcdef'],
    ['ünïcödé pässwörd', 'Zz./09'],
  ] as const) {
    const expected = execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: `${password}\n` })
      .toString()
      .trim();
    assert.equal(sha512Crypt(password, salt), expected);
  }
  // openssl reads no empty password; glibc's crypt(3) gives this one.
  assert.equal(
    sha512Crypt('', 'x'),
    '$6$x$QSmr1Bx2g4O6BzKvdkgOcyU6H91X6I/XBv5pSalMhSPkwdH6Beo3F455xZJg0v//bxVK5F4OE5k1.0xuR26MK0',
  );
  assert.match(sha512Crypt('pw'), /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
});

test('lifecycle events name their instance; snapshots and renames included', () => {
  const event = (action: string, source: string, context: Record<string, unknown> = {}) =>
    ({
      type: 'lifecycle',
      timestamp: '',
      location: 'none',
      project: 'default',
      metadata: { action, source, context },
    }) as Parameters<typeof lifecycleTarget>[0];
  assert.deepEqual(lifecycleTarget(event('instance-started', '/1.0/instances/c1')), {
    name: 'c1',
    action: 'instance-started',
  });
  assert.deepEqual(lifecycleTarget(event('instance-snapshot-created', '/1.0/instances/c1/snapshots/s1')), {
    name: 'c1',
    action: 'instance-snapshot-created',
  });
  assert.deepEqual(lifecycleTarget(event('instance-renamed', '/1.0/instances/new?project=p', { old_name: 'old' })), {
    name: 'new',
    action: 'instance-renamed',
    oldName: 'old',
  });
  assert.equal(lifecycleTarget(event('image-created', '/1.0/images/abc')), undefined);
  assert.equal(changeKind('instance-created'), 'created');
  assert.equal(changeKind('instance-deleted'), 'deleted');
  assert.equal(changeKind('instance-shutdown'), 'updated');
});

test('a guest process without a TTY refuses resize; its stdin errors never crash the process', async () => {
  const { PassThrough, Writable } = await import('node:stream');
  const stdin = new Writable({ write: (_c, _e, cb) => cb(new Error('closed')) });
  const session = {
    stdin,
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    exit: Promise.resolve(0),
    resize: async () => {},
    signal: async () => {},
    close: () => {},
  } as unknown as ConstructorParameters<typeof LxdGuestProcess>[0];
  const proc = new LxdGuestProcess(session, false);
  await assert.rejects(proc.resize(24, 80), InvalidRequestError);
  await assert.rejects(proc.write('x'), /closed/);
  assert.ok(new CancelledError({ message: 'x' }));
});
