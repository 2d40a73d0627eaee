import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatUpid, InvalidArgumentError, isUpid, parseUpid } from '@vmplane/proxmox';

test('parses a UPID PVE writes for a VM start', () => {
  const text = 'UPID:pve1:000ABCDE:0123ABCD:65A1B2C3:qmstart:100:root@pam:';
  const u = parseUpid(text);
  assert.equal(u.node, 'pve1');
  assert.equal(u.pid, 0xabcde);
  assert.equal(u.pstart, 0x0123abcd);
  assert.equal(u.starttime, 0x65a1b2c3);
  assert.equal(u.type, 'qmstart');
  assert.equal(u.id, '100');
  assert.equal(u.user, 'root@pam');
  assert.equal(u.tokenId, undefined);
  assert.equal(formatUpid(u), text);
});

test('keeps the token id of a task started with an API token', () => {
  const text = 'UPID:node-a.example:00001234:00005678:6600AAAA:vzdump::ci@pve!deploy:';
  const u = parseUpid(text);
  assert.equal(u.user, 'ci@pve!deploy');
  assert.equal(u.tokenId, 'deploy');
  assert.equal(u.id, '');
  assert.equal(formatUpid(u), text);
});

test('formats from parts, adding the token to the user', () => {
  const text = formatUpid({
    node: 'pve2',
    pid: 1,
    pstart: 2,
    starttime: 3,
    type: 'qmigrate',
    id: '101',
    user: 'ops@pve',
    tokenId: 'bot',
  });
  assert.equal(text, 'UPID:pve2:00000001:00000002:00000003:qmigrate:101:ops@pve!bot:');
  assert.ok(isUpid(text));
});

test('refuses text that is not a UPID', () => {
  for (const bad of [
    '',
    'UPID:pve1',
    'UPID:pve1:zz:0:0:qmstart:100:root@pam:',
    'upid:pve1:00000001:00000002:00000003:x::u@p:',
  ]) {
    assert.equal(isUpid(bad), false, bad);
    assert.throws(() => parseUpid(bad), InvalidArgumentError);
  }
});
