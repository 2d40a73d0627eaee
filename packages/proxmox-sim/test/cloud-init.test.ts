import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256Crypt } from '../src/crypt.js';
import { loggedIn, sim } from './helpers.js';

const KEYS = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI+/x alice@laptop', 'ssh-rsa AAAAB3Nza bob@host'];

test('the crypt PVE stores cipassword with is glibc SHA-256 crypt', () => {
  // Vectors from crypt(3) (openssl passwd -5 -salt ...).
  assert.equal(sha256Crypt('Hello world!', 'saltstring'), '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5');
  assert.equal(sha256Crypt('pw', 'ab/cdXef'), '$5$ab/cdXef$Ja3f3krdAxuozI9OXTqSFMFAiBHYt76xJVXNj20AT.C');
  assert.equal(sha256Crypt('x'.repeat(70), 'abc'), '$5$abc$5ox4QOf8XoCKLSxoCXvmgZ1th6KC4nDv0o9/Fj2v2E/');
});

test('cloud-init settings as PVE stores them: the password hashed and masked, keys escaped by uri_escape', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, name: 'web', status: 'stopped' }] });
  const api = await loggedIn(s);
  const put = await api.put('/nodes/pve1/qemu/100/config', {
    ide2: 'local:cloudinit',
    ciuser: 'debian',
    cipassword: 'hunter2',
    sshkeys: encodeURIComponent(KEYS.join('\n')),
    ipconfig0: 'ip=127.77.0.105/24,gw=127.77.0.1',
    nameserver: '1.1.1.1 9.9.9.9',
    searchdomain: 'lab.example',
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const cfg = (await api.get('/nodes/pve1/qemu/100/config')).body.data as Record<string, string>;
  assert.equal(cfg.cipassword, '**********');
  assert.equal(cfg.ide2, 'local:100/vm-100-cloudinit.qcow2,media=cdrom');
  // uri_escape leaves only A-Z a-z 0-9 - _ . ~ alone: `@`, `+`, `/`, space and newline are escaped.
  assert.equal(
    cfg.sshkeys,
    'ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAI%2B%2Fx%20alice%40laptop%0Assh-rsa%20AAAAB3Nza%20bob%40host',
  );
  const stored = String(s.state.guests.get(100)?.config.cipassword);
  assert.match(stored, /^\$5\$[A-Za-z0-9/.X]{8}\$[A-Za-z0-9/.]{43}$/);
  assert.equal(sha256Crypt('hunter2', stored.split('$')[2] ?? ''), stored);
  const pending = (await api.get('/nodes/pve1/qemu/100/cloudinit')).body.data as Array<{ key: string; value: string }>;
  assert.equal(pending.find((p) => p.key === 'cipassword')?.value, '**********');
  // A value that is a crypt hash already is kept as it is.
  await api.put('/nodes/pve1/qemu/100/config', { cipassword: '$5$abc$5ox4QOf8XoCKLSxoCXvmgZ1th6KC4nDv0o9/Fj2v2E/' });
  assert.equal(s.state.guests.get(100)?.config.cipassword, '$5$abc$5ox4QOf8XoCKLSxoCXvmgZ1th6KC4nDv0o9/Fj2v2E/');

  const dump = async (type: string) =>
    String((await api.get('/nodes/pve1/qemu/100/cloudinit/dump', { type })).body.data);
  assert.equal(
    await dump('user'),
    [
      '#cloud-config',
      'hostname: web',
      'manage_etc_hosts: true',
      'fqdn: web.lab.example',
      'user: debian',
      'password: $5$abc$5ox4QOf8XoCKLSxoCXvmgZ1th6KC4nDv0o9/Fj2v2E/',
      'ssh_authorized_keys:',
      `  - ${KEYS[0]}`,
      `  - ${KEYS[1]}`,
      'chpasswd:',
      '  expire: False',
      'users:',
      '  - default',
      'package_upgrade: true',
      '',
    ].join('\n'),
  );
  assert.equal(
    await dump('network'),
    [
      'version: 1',
      'config:',
      '    - type: physical',
      '      name: eth0',
      "      mac_address: 'bc:24:11:00:64:00'",
      '      subnets:',
      '      - type: static',
      "        address: '127.77.0.105'",
      "        netmask: '255.255.255.0'",
      "        gateway: '127.77.0.1'",
      '    - type: nameserver',
      '      address:',
      "      - '1.1.1.1'",
      "      - '9.9.9.9'",
      '      search:',
      "      - 'lab.example'",
      '',
    ].join('\n'),
  );
  assert.match(await dump('meta'), /^instance-id: [0-9a-f]{40}\n$/);
  assert.equal(s.violations.length, 0);
});

test('cloud-init dump without user settings; root as ciuser; configdrive2 for Windows and citype', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, status: 'stopped' }] });
  const api = await loggedIn(s);
  const dump = async (type: string) =>
    String((await api.get('/nodes/pve1/qemu/100/cloudinit/dump', { type })).body.data);
  await api.put('/nodes/pve1/qemu/100/config', { delete: 'name', ipconfig0: 'ip=dhcp', ciupgrade: 0 });
  assert.equal(
    await dump('user'),
    '#cloud-config\nhostname: VM100\nmanage_etc_hosts: true\nfqdn: VM100\nchpasswd:\n  expire: False\nusers:\n  - default\n',
  );
  // Without nameserver and searchdomain, PVE takes the node's resolv.conf.
  assert.match(
    await dump('network'),
    /- type: dhcp4\n {4}- type: nameserver\n {6}address:\n {6}- '192\.168\.100\.1'\n/,
  );
  await api.put('/nodes/pve1/qemu/100/config', { ciuser: 'root' });
  assert.match(await dump('user'), /^user: root\ndisable_root: False\nchpasswd:\n {2}expire: False\n$/m);
  assert.ok(!(await dump('user')).includes('users:'));

  await api.put('/nodes/pve1/qemu/100/config', { citype: 'configdrive2', ipconfig0: 'ip=127.77.0.9/16,gw=127.77.0.1' });
  assert.equal(
    await dump('network'),
    [
      'auto lo',
      'iface lo inet loopback',
      '',
      '        dns_nameservers 192.168.100.1',
      '        dns_search vmplane.lan',
      'auto eth0',
      'iface eth0 inet static',
      '        address 127.77.0.9',
      '        netmask 255.255.0.0',
      '        gateway 127.77.0.1',
      '',
    ].join('\n'),
  );
  assert.match(
    await dump('meta'),
    /^\{\n {5}"uuid": "[0-9a-f]{40}",\n {5}"network_config": \{ "content_path": "\/content\/0000" \}\n\}\n$/,
  );
});
