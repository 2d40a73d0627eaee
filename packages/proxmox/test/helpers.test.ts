import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  firstNonLoopbackIp,
  formatBytes,
  formatUptime,
  InvalidArgumentError,
  parseVmid,
  safeBool,
  safeFloat,
  safeInt,
  safeString,
} from '@vmplane/proxmox';

test('formatBytes uses binary units and drops trailing zeros', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1 KiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(32 * 1024 ** 3), '32 GiB');
  assert.equal(formatBytes(1.25 * 1024 ** 4, { decimals: 2 }), '1.25 TiB');
  assert.equal(formatBytes(1_500_000, { si: true }), '1.5 MB');
  assert.equal(formatBytes(-5), '0 B');
  assert.equal(formatBytes(Number.NaN), '0 B');
});

test('formatUptime shows days, hours and minutes, or seconds below a minute', () => {
  assert.equal(formatUptime(0), '0s');
  assert.equal(formatUptime(42), '42s');
  assert.equal(formatUptime(60), '1m');
  assert.equal(formatUptime(3 * 3600 + 4 * 60), '3h 4m');
  assert.equal(formatUptime(93784), '1d 2h 3m');
  assert.equal(formatUptime(86400), '1d 0h 0m');
  assert.equal(formatUptime(-1), '0s');
});

test('parseVmid reads numbers, numeric strings and resource ids', () => {
  assert.equal(parseVmid(100), 100);
  assert.equal(parseVmid('101'), 101);
  assert.equal(parseVmid(' 102 '), 102);
  assert.equal(parseVmid('qemu/103'), 103);
  assert.equal(parseVmid('lxc/999999999'), 999999999);
  for (const bad of [99, 0, -1, 1.5, '10a', '', 'qemu/', null, undefined, 1_000_000_000, Number.NaN, {}]) {
    assert.throws(() => parseVmid(bad), InvalidArgumentError, String(bad));
  }
});

test('safe conversions read what PVE sends and fall back otherwise', () => {
  assert.equal(safeString('x'), 'x');
  assert.equal(safeString(5), '5');
  assert.equal(safeString(null, '-'), '-');
  assert.equal(safeString({}), '');
  assert.equal(safeFloat('0.25'), 0.25);
  assert.equal(safeFloat(3), 3);
  assert.equal(safeFloat('abc', -1), -1);
  assert.equal(safeFloat(Number.POSITIVE_INFINITY), 0);
  assert.equal(safeFloat(''), 0);
  assert.equal(safeInt('42.9'), 42);
  assert.equal(safeInt('x', 7), 7);
  for (const t of [true, 1, '1', 'true', 'YES', 'on']) assert.equal(safeBool(t), true, String(t));
  for (const f of [false, 0, '0', 'false', 'no', 'off', '']) assert.equal(safeBool(f), false, String(f));
  assert.equal(safeBool('maybe', true), true);
  assert.equal(safeBool(undefined), false);
});

test('firstNonLoopbackIp prefers IPv4 and skips loopback and link-local', () => {
  const agent = [
    { name: 'lo', 'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4' }] },
    {
      name: 'eth0',
      'ip-addresses': [
        { 'ip-address': 'fe80::1', 'ip-address-type': 'ipv6' },
        { 'ip-address': '2001:db8::5', 'ip-address-type': 'ipv6' },
        { 'ip-address': '10.0.0.5', 'ip-address-type': 'ipv4' },
      ],
    },
  ];
  assert.equal(firstNonLoopbackIp(agent), '10.0.0.5');
  assert.equal(firstNonLoopbackIp([{ name: 'eth0', inet6: '2001:db8::7/64' }]), '2001:db8::7');
  assert.equal(firstNonLoopbackIp([{ name: 'eth0', inet: '192.168.1.20/24' }]), '192.168.1.20');
  assert.equal(firstNonLoopbackIp([{ name: 'lo', inet: '127.0.0.1/8' }]), undefined);
  assert.equal(firstNonLoopbackIp(undefined), undefined);
});
