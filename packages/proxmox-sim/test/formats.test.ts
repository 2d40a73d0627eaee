import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  loadSchemaIndex,
  type PveJsonSchema,
  type PveOperation,
  SHIPPED_SCHEMA,
  validateParams,
} from '@vmplane/proxmox-sim';

const index = loadSchemaIndex(SHIPPED_SCHEMA);

/** The named formats the schema's parameters use (at any depth, property-string keys included). */
function formatsInParameters(): Set<string> {
  const names = new Set<string>();
  const walk = (s: PveJsonSchema | undefined): void => {
    if (!s) return;
    if (typeof s.format === 'string') names.add(s.format);
    else if (s.format) for (const sub of Object.values(s.format)) walk(sub);
    for (const sub of Object.values(s.properties ?? {})) walk(sub);
    walk(s.items);
    for (const sub of s.oneOf ?? []) walk(sub);
  };
  for (const route of index.routes.values()) for (const op of route.methods.values()) walk(op.parameters);
  return names;
}

test('every named format the schema uses is enforced (none unknown)', () => {
  const used = formatsInParameters();
  assert.equal(used.size, 121);
  for (const route of index.routes.values()) for (const op of route.methods.values()) index.validator.operation(op);
  assert.deepEqual([...index.validator.formats.unknown], []);
  for (const name of used) assert.ok(index.validator.formats.resolve(name), name);
});

const op = (schema: PveJsonSchema): PveOperation => ({
  method: 'POST',
  name: 'probe',
  parameters: { additionalProperties: 0, properties: { v: schema } },
  returns: {},
});

/** The error for `v` under a format, or undefined when the value is valid. */
function check(format: string, value: string, type = 'string'): string | undefined {
  return validateParams(op({ type, format }), { v: value }, index.validator).errors?.v;
}

// [format, valid values, invalid values], each as PVE's own verifier decides.
const TABLE: Array<[string, string[], string[]]> = [
  ['pve-node', ['pve1', 'a', 'node-2'], ['-pve', 'pve_1', 'a.b', '', 'pve1\n']],
  ['pve-vmid', ['100', '999999999'], ['99', '0100', '1e3', '1000000000']],
  ['pve-storage-id', ['local', 'local-lvm', 'nfs.1'], ['1local', 'local-', 'a', 'lo cal']],
  ['pve-configid', ['ab', 'job_1-x'], ['a', '1a', 'a.b']],
  ['pve-userid', ['root@pam', 'alice@my-realm'], ['root', 'a b@pve', 'x@1realm', `${'a'.repeat(61)}@pve`]],
  ['pve-tokenid', ['root@pam!ci'], ['root@pam', 'root@pam!1x']],
  ['pve-realm', ['pam', 'my.ad'], ['1ad', 'a']],
  ['pve-groupid', ['admins', 'ops.team-1'], ['a b', 'x/y']],
  ['pve-roleid', ['PVEAdmin'], ['Role!']],
  ['pve-poolid', ['prod', 'a/b/c'], ['a/b/c/d', 'a//b', 'a b']],
  ['pve-tag-list', ['a;b', 'prod,web-1', ''], ['a b!', '-x']],
  ['pve-vmid-list', ['100,101 102;103'], ['100,abc']],
  ['ip', ['10.0.0.1', 'fd00::1', '::ffff:1.2.3.4'], ['10.0.0.256', '01.2.3.4', 'fe80::1%eth0', 'host']],
  ['ipv4', ['192.168.1.1'], ['fd00::1']],
  ['ipv6', ['fd00::1'], ['192.168.1.1']],
  ['CIDR', ['10.0.0.0/8', 'fd00::/64', '10.0.0.5/24'], ['10.0.0.0/7', '10.0.0.0/33', '10.0.0.0']],
  ['CIDRv4', ['10.1.2.0/24'], ['fd00::/64']],
  ['IPorCIDR', ['10.0.0.1', '10.0.0.0/24'], ['10.0.0.5/24', 'x']],
  ['IPorCIDRorAlias', ['dc/web', 'web', '10.0.0.0/24'], ['1web', '10.0.0.5/24']],
  ['ipv4mask', ['255.255.255.0', '255.255.255.255'], ['255.0.255.0', '24']],
  ['mac-addr', ['BC:24:11:00:00:01'], ['01:24:11:00:00:01', 'BC:24:11:00:00', 'zz:24:11:00:00:01']],
  ['dns-name', ['example.com', 'a'], ['-a.com', 'a..b', 'exa mple.com', 'under_score.com']],
  ['address', ['10.0.0.1', 'example.com'], ['not a host']],
  ['email', ['me@example.com', 'a.b+c@x-y.org'], ['me@', 'me example.com']],
  ['email-opt', ['', 'me@example.com'], ['nope']],
  ['email-or-username-list', ['root, me@example.com'], ['bad user!']],
  ['urlencoded', ['ssh-ed25519%20AAAA'], ['a b', 'a\nb']],
  ['pve-iface', ['eth0', 'vmbr0.100', 'bond0:1'], ['0eth', 'e', 'eth-0']],
  ['pve-bridge-id', ['vmbr0', 'br-x.1'], ['vm br0', 'a/b']],
  ['pve-volume-id', ['local:iso/x.iso', 'local-lvm:vm-100-disk-0'], ['nocolon', '1local:x']],
  ['pve-volume-id-or-qm-path', ['none', 'cdrom', '/dev/sdb', 'local:100/a.qcow2'], ['sdb']],
  ['pve-lxc-mp-string', ['/mnt/data', 'local:8'], ['/mnt/../etc', '../x', '/mnt/.']],
  ['pve-lxc-dev-string', ['/dev/ttyUSB0'], ['/etc/passwd', '/dev/../etc', '/dev/x/']],
  ['pve-storage-path', ['/mnt/data'], ['mnt', '/;rm']],
  ['pve-storage-portal-dns', ['10.0.0.1:3260', 'san.example.com', '[fd00::1]:3260'], ['../../etc \0', 'a b']],
  ['pve-storage-server', ['nfs.example.com', '10.0.0.2'], ['nfs server']],
  ['pve-storage-vgname', ['pve', 'vg-data.1'], ['-vg', 'v']],
  ['pve-dir-override-list', ['iso=isos,backup=dump/x'], ['iso=../x', 'bogus=x', 'iso']],
  ['disk-size', ['32G', '1.5T', '1024'], ['32GB', '-1G', 'G']],
  ['pve-startup-order', ['1', 'order=2,up=30,down=60'], ['order=x', 'first', '']],
  [
    'pve-calendar-event',
    ['daily', 'mon..fri 02:30', '*/15', 'sat 2024-01-01 00:00', 'mon,wed 8..17:0/15'],
    ['dayly', '25:00', 'mon..fri 02:61', 'funday'],
  ],
  ['pve-replication-job-id', ['100-0'], ['abc', '99-1']],
  ['pve-ha-resource-or-vm-id', ['vm:100', '100'], ['vm 100']],
  ['pve-hotplug-features', ['0', '1', 'disk,network'], ['disk,floppy']],
  ['pve-cpuset', ['0-3,8'], ['3-1', 'a', '']],
  ['pve-ct-timezone', ['host', 'Europe/Berlin', 'UTC'], ['Mars/Base', '../etc']],
  [
    'pve-fw-addr-spec',
    ['10.0.0.1,10.0.0.0/24', '+dc/blocked', 'web', '10.0.0.1-10.0.0.9'],
    ['10.0.0.1,fd00::1', '10.0.0.1-10.0.0.9,10.0.1.1', '10.0.0.1,,10.0.0.2'],
  ],
  [
    'pve-fw-dport-spec',
    ['22', '80,443', '1000:2000', 'ssh'],
    ['70000', '2000:1000', '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16'],
  ],
  ['pve-fw-icmp-type-spec', ['echo-request', '8', '3/4'], ['ping']],
  ['pve-fw-protocol-spec', ['tcp', '6'], ['256', '!']],
  ['pve-fw-conntrack-helper', ['ftp,tftp'], ['ftp,http']],
  ['pve-sdn-zone-id', ['zone1'], ['zone_1', 'toolongzone']],
  ['pve-sdn-vnet-id', ['vnet1'], ['1vnet']],
  ['pve-sdn-subnet-id', ['zone1-10.0.0.0-24'], ['zone1-10.0.0.0/24', 'zone1-x-24']],
  ['pve-sdn-bgp-rt-list', ['65000:100,10.0.0.1:5'], ['65000']],
  ['pve-vlan-id-or-range-list', ['2-4094 100'], ['1', '100-50', '5000']],
  ['pve-priv-list', ['VM.Audit,Sys.Audit'], ['VM.Fly']],
  ['pve-task-status-type-list', ['ok,error'], ['fine']],
  ['pve-day-of-week-list', ['mon,fri'], ['monday']],
  ['pve-storage-content-list', ['images,iso'], ['isos']],
  ['storage-pair-list', ['1', 'local:local-lvm,nfs', 'local-lvm'], ['local:1bad']],
  [
    'pve-command-batch',
    ['[{"path":"/version","method":"GET"}]'],
    ['{', '[{"method":"GET"}]', '[{"path":"/x","method":"PATCH"}]'],
  ],
  [
    'pem-string',
    ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
    ['-----BEGIN X-----\nAAAA\n-----END Y-----'],
  ],
  ['lxc-ip-with-ll-iface-list', ['10.0.0.1 fe80::1%eth0'], ['fe80::1%-x']],
  ['pve-acme-domain-list', ['a.example.com;b.example.org'], ['localhost']],
  ['ldap-simple-attr', ['uid', 'sAMAccountName'], ['cn=x']],
  ['graphite-path', ['proxmox.ve'], ['a b']],
  ['pve-sdn-isis-net', ['49.0001.1921.6800.1002.00'], ['49.1.2.3']],
];

test('formats accept what PVE accepts and refuse what it refuses', () => {
  for (const [format, valid, invalid] of TABLE) {
    for (const v of valid) assert.equal(check(format, v), undefined, `${format}: ${JSON.stringify(v)} is valid`);
    for (const v of invalid) {
      const err = check(format, v);
      assert.ok(err?.startsWith('invalid format - '), `${format}: ${JSON.stringify(v)} is invalid (got ${err})`);
    }
  }
});

test('formats apply to integer parameters too, as PVE checks every scalar', () => {
  assert.equal(check('pve-vmid', '99', 'integer'), 'invalid format - value does not look like a valid VM ID');
  assert.equal(check('pve-vmid', '100', 'integer'), undefined);
});

test('property-string formats named in the schema are parsed key by key, with cross-key rules', () => {
  const prune = (v: string) => check('prune-backups', v);
  assert.equal(prune('keep-last=3,keep-daily=7'), undefined);
  assert.match(prune('keep-all=1,keep-last=3') ?? '', /keep-all cannot be set together with other options/);
  assert.match(prune('keep-last=0') ?? '', /keep-last: value must have a minimum value of 1/);
  assert.match(prune('keep-forever=1') ?? '', /keep-forever: property is not defined in schema/);
  assert.match(check('proxmox-remote', 'host=pve.example.com') ?? '', /apitoken: property is missing/);
  assert.equal(check('proxmox-remote', 'host=pve.example.com,apitoken=PVEAPIToken=a@pam!t=s,port=8006'), undefined);
  // cdrom is an IDE drive: the schema's own ide[n] format is used for it.
  assert.equal(check('pve-qm-ide', 'local:iso/x.iso,media=cdrom'), undefined);
  assert.match(
    check('pve-qm-ide', 'local:iso/x.iso,media=floppy') ?? '',
    /media: value 'floppy' does not have a value/,
  );
  assert.match(check('pve-qm-hostpci', 'pcie=1') ?? '', /exactly one of 'host' or 'mapping'/);
});
