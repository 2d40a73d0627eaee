import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { TimeoutError } from '@vmplane/common';
import ssh2 from 'ssh2';
import { ReadinessTimeoutError } from '../src/errors.js';
import {
  commandLine,
  connectSsh,
  createSshKey,
  ensureSshKey,
  generateEd25519,
  initGuest,
  loadSshKey,
  runSsh,
  SshAuthError,
  SshCommandError,
  SshKeyError,
  shellQuote,
  sshShell,
  startSshProcess,
  waitForSsh,
} from '../src/ssh/index.js';
import { startSshServer } from './support/sim.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'vmpt-ssh-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('SSH key', () => {
  it('is made once, mode 0600, in OpenSSH format, and reused', async () => {
    const dir = join(await tempDir(), 'ssh');
    assert.equal(await loadSshKey(dir), undefined);
    const first = await ensureSshKey(dir);
    assert.equal(first.created, true);
    const info = await stat(join(dir, 'id_ed25519'));
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const text = await readFile(join(dir, 'id_ed25519'), 'utf8');
    assert.match(text, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const parsed = ssh2.utils.parseKey(text);
    assert.ok(!(parsed instanceof Error) && parsed.type === 'ssh-ed25519' && parsed.isPrivateKey());
    assert.equal((await readFile(join(dir, 'id_ed25519.pub'), 'utf8')).trim(), first.key.publicKey);
    assert.match(first.key.publicKey, /^ssh-ed25519 [A-Za-z0-9+/]+={0,2} vmplane$/);
    assert.match(first.key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);

    const again = await ensureSshKey(dir);
    assert.equal(again.created, false);
    assert.equal(again.key.publicKey, first.key.publicKey);
    // A second creation (another process) loses the race and reads the winner's key.
    const racer = await createSshKey(dir);
    assert.equal(racer.created, false);
    assert.equal(racer.key.publicKey, first.key.publicKey);
  });

  it('writes keys OpenSSH reads, every time (ssh2 drops a leading zero byte)', async (t) => {
    const { execFileSync } = await import('node:child_process');
    const dir = await tempDir();
    for (let i = 0; i < 300; i++) {
      const pair = generateEd25519('k');
      const parsed = ssh2.utils.parseKey(pair.privateKey);
      assert.ok(!(parsed instanceof Error), `key ${i}: ${String(parsed)}`);
      assert.equal(`${parsed.type} ${parsed.getPublicSSH().toString('base64')} k`, pair.publicKey);
    }
    let keygen = true;
    try {
      execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    } catch (error) {
      keygen = (error as NodeJS.ErrnoException).code !== 'ENOENT';
    }
    if (!keygen) {
      t.skip('ssh-keygen is not installed');
      return;
    }
    const { key } = await ensureSshKey(join(dir, 'ssh'));
    const derived = execFileSync('ssh-keygen', ['-y', '-f', key.path], { encoding: 'utf8' }).trim();
    assert.equal(derived.split(' ').slice(0, 2).join(' '), key.publicKey.split(' ').slice(0, 2).join(' '));
  });

  it('shares one creation between concurrent callers', async () => {
    const dir = join(await tempDir(), 'ssh');
    const results = await Promise.all([ensureSshKey(dir), ensureSshKey(dir), ensureSshKey(dir)]);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.key.publicKey)).size, 1);
  });

  it('tightens a readable key to 0600, writes a lost .pub again, and never prints the private half', async () => {
    const dir = join(await tempDir(), 'ssh');
    const { key } = await ensureSshKey(dir);
    const { chmod, unlink } = await import('node:fs/promises');
    await chmod(join(dir, 'id_ed25519'), 0o644);
    await unlink(join(dir, 'id_ed25519.pub'));
    const loaded = await loadSshKey(dir);
    assert.equal(((await stat(join(dir, 'id_ed25519'))).mode & 0o777).toString(8), '600');
    assert.equal((await readFile(join(dir, 'id_ed25519.pub'), 'utf8')).trim(), key.publicKey);
    const secret = key.privateKey();
    for (const shown of [inspect(loaded), JSON.stringify(loaded), String(inspect(loaded, { showHidden: true }))]) {
      assert.ok(!shown.includes(secret.split('\n')[1] ?? 'x'), shown);
    }
  });

  it('refuses a file that is not an ed25519 private key, and leaves it alone', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'id_ed25519'), 'not a key\n', { mode: 0o600 });
    await assert.rejects(loadSshKey(dir), SshKeyError);
    await assert.rejects(ensureSshKey(dir), SshKeyError);
    assert.equal(await readFile(join(dir, 'id_ed25519'), 'utf8'), 'not a key\n');
  });
});

describe('SSH readiness', () => {
  it('connects, sees the banner, logs in with the key and runs true', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({ accounts: { debian: { keys: [key.publicKey] } } });
    const result = await waitForSsh(
      { host: server.host, port: server.port, username: 'debian', key },
      { timeout: 10_000 },
    );
    assert.equal(result.hostKey, server.hostKey);
    assert.match(result.banner ?? '', /^SSH-2\.0-/);
    assert.deepEqual(
      server.execs.map((e) => e.command),
      ['true'],
    );
  });

  it('keeps trying while the key is refused, and says so', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const accounts: Record<string, { keys: string[] }> = {};
    const server = await startSshServer({ accounts });
    const lines: string[] = [];
    // cloud-init writes the key a moment after sshd came up.
    const writeKey = setTimeout(() => {
      accounts.debian = { keys: [key.publicKey] };
    }, 300);
    after(() => clearTimeout(writeKey));
    const result = await waitForSsh(
      { host: server.host, port: server.port, username: 'debian', key },
      { timeout: 10_000, backoff: { initial: 50, max: 100 }, log: (l) => void lines.push(l) },
    );
    assert.ok(result.attempts > 1);
    assert.ok(
      lines.some((l) => /refused the login/.test(l)),
      lines.join('\n'),
    );
  });

  it('times out with ReadinessTimeoutError against a server that accepts TCP and sends no banner', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({ silent: true, accounts: { debian: { keys: [key.publicKey] } } });
    await assert.rejects(
      waitForSsh(
        { host: server.host, port: server.port, username: 'debian', key },
        { timeout: 800, attemptTimeout: 300, backoff: { initial: 20, max: 50 } },
      ),
      (e: unknown) => {
        assert.ok(e instanceof ReadinessTimeoutError, String(e));
        assert.match(e.message, /no SSH banner/);
        return true;
      },
    );
    assert.ok(server.connections >= 1);
  });

  it('times out with ReadinessTimeoutError when nothing listens', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer();
    await server.close();
    await assert.rejects(
      waitForSsh(
        { host: server.host, port: server.port, username: 'debian', key },
        { timeout: 300, backoff: { initial: 20, max: 50 } },
      ),
      ReadinessTimeoutError,
    );
  });
});

describe('SSH commands', () => {
  it('runs a command with stdin, streams its lines, and keeps the secret out of every line', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const secret = 'hunter2-Sup3r-s3cret';
    const server = await startSshServer({
      accounts: { debian: { keys: [key.publicKey] } },
      answer: (e) =>
        e.command === 'sudo -n chpasswd'
          ? { stdout: 'password updated\nfor 1 user\n', stderr: 'a warning\n', code: 0 }
          : { code: 3, stderr: 'bad\n' },
    });
    const target = { host: server.host, port: server.port, username: 'debian', key };
    const lines: string[] = [];
    const result = await runSsh(target, 'sudo -n chpasswd', {
      stdin: `debian:${secret}\n`,
      timeout: 10_000,
      onLine: (line, stream) => void lines.push(`${stream}: ${line}`),
    });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(lines.sort(), ['stderr: a warning', 'stdout: for 1 user', 'stdout: password updated']);
    assert.equal(server.execs[0]?.stdin, `debian:${secret}\n`);
    assert.ok(!server.execs[0]?.command.includes(secret));
    assert.ok(!lines.join('\n').includes(secret));

    const failed = await runSsh(target, 'false-ish', { timeout: 10_000 });
    assert.equal(failed.exitCode, 3);
    assert.deepEqual(failed.tail, ['bad']);
  });

  it('refuses a wrong key with SshAuthError and a hung command at its deadline', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({
      accounts: { debian: { keys: [key.publicKey] } },
      answer: () => new Promise(() => {}),
    });
    await assert.rejects(
      connectSsh({ host: server.host, port: server.port, username: 'root', key }, { timeout: 5_000 }),
      SshAuthError,
    );
    await assert.rejects(
      runSsh({ host: server.host, port: server.port, username: 'debian', key }, 'sleep 1000', { timeout: 300 }),
      TimeoutError,
    );
  });

  it('pins the host key it learnt', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({ accounts: { debian: { keys: [key.publicKey] } } });
    const target = { host: server.host, port: server.port, username: 'debian', key };
    const conn = await connectSsh({ ...target, hostKey: server.hostKey }, { timeout: 5_000 });
    conn.close();
    await assert.rejects(
      connectSsh({ ...target, hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, { timeout: 5_000 }),
      /offered host key/,
    );
  });

  it('runs a process with output streams and an exit code', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({
      accounts: { debian: { keys: [key.publicKey] } },
      answer: (e) => ({ stdout: `ran ${e.command}\n${e.stdin}`, code: 7 }),
    });
    const conn = await connectSsh(
      { host: server.host, port: server.port, username: 'debian', key },
      { timeout: 5_000 },
    );
    const proc = await startSshProcess(conn, {
      command: ['printf', '%s\\n', "it's"],
      env: { LANG: 'C' },
      cwd: '/tmp',
      stdin: 'input\n',
    });
    let out = '';
    for await (const chunk of proc.stdout) out += Buffer.from(chunk).toString();
    assert.equal(await proc.exit, 7);
    assert.equal(out, `ran cd /tmp && exec env LANG=C printf '%s\\n' 'it'\\''s'\ninput\n`);
  });
});

describe('shell quoting', () => {
  it('quotes what a shell would read otherwise', () => {
    assert.equal(shellQuote('plain-word_1.2'), 'plain-word_1.2');
    assert.equal(shellQuote(''), "''");
    assert.equal(shellQuote("a b'c"), `'a b'\\''c'`);
    assert.equal(shellQuote('$(rm -rf /)'), `'$(rm -rf /)'`);
    assert.throws(() => commandLine(['x'], { env: { 'A B': '1' } }));
    assert.throws(() => commandLine([]));
  });
});

describe('guest init', () => {
  it('runs the steps in order over SSH, the password on stdin only', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({
      accounts: { debian: { keys: [key.publicKey] } },
      answer: () => ({ code: 0, stdout: 'ok\n' }),
    });
    const conn = await connectSsh(
      { host: server.host, port: server.port, username: 'debian', key },
      { timeout: 5_000 },
    );
    const lines: string[] = [];
    const secret = 'P@ss w0rd "quoted"';
    try {
      await initGuest(
        sshShell(conn),
        {
          loginUser: 'debian',
          password: secret,
          authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUser user@laptop'],
          hostname: 'web-1',
          packageManager: 'apt',
        },
        { timeout: 10_000, log: (l) => void lines.push(l) },
      );
    } finally {
      conn.close();
    }
    const commands = server.execs.map((e) => e.command);
    assert.deepEqual(
      commands.map((c) => c.replace(/sh -c '.*' sh/s, "sh -c '...' sh")),
      [
        'cloud-init status --wait',
        'sudo -n chpasswd',
        "sudo -n sh -c '...' sh debian",
        'sudo -n hostnamectl set-hostname web-1',
        'sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q update',
        'sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q -y install qemu-guest-agent',
        'sudo -n systemctl enable --now qemu-guest-agent',
      ],
    );
    assert.equal(server.execs[1]?.stdin, `debian:${secret}\n`);
    assert.equal(server.execs[2]?.stdin, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUser user@laptop\n');
    assert.ok(!commands.join('\n').includes('w0rd'));
    assert.ok(!lines.join('\n').includes('w0rd'));
    assert.ok(lines.includes('    ok'));
  });

  it('stops at the first failing step with its output, and uses dnf on Rocky', async () => {
    const { key } = await ensureSshKey(join(await tempDir(), 'ssh'));
    const server = await startSshServer({
      accounts: { root: { keys: [key.publicKey] } },
      answer: (e) => (e.command.startsWith('dnf') ? { code: 1, stderr: 'No match for argument\n' } : { code: 0 }),
    });
    const conn = await connectSsh({ host: server.host, port: server.port, username: 'root', key }, { timeout: 5_000 });
    try {
      await assert.rejects(
        initGuest(sshShell(conn), { loginUser: 'root', user: 'alice', packageManager: 'dnf' }, { timeout: 10_000 }),
        (e: unknown) => {
          assert.ok(e instanceof SshCommandError);
          assert.equal(e.exitCode, 1);
          assert.deepEqual(e.tail, ['No match for argument']);
          return true;
        },
      );
    } finally {
      conn.close();
    }
    assert.deepEqual(
      server.execs.map((e) => e.command),
      [
        'cloud-init status --wait',
        'useradd -m -s /bin/bash alice',
        'usermod -aG wheel alice',
        'dnf -q -y install qemu-guest-agent',
      ],
    );
  });
});
