import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cloudImageVmParams,
  cloudInitParams,
  decodeSshKeys,
  encodeSshKeys,
  formatPropertyString,
  parseGuestConfig,
  parsePropertyString,
  parseSize,
} from '@vmplane/proxmox';

test('property strings: default key, pairs, and back', () => {
  assert.deepEqual(parsePropertyString('local-lvm:vm-100-disk-0,size=32G,ssd=1', 'file'), {
    file: 'local-lvm:vm-100-disk-0',
    size: '32G',
    ssd: '1',
  });
  assert.equal(
    formatPropertyString({ file: 'local:0', 'import-from': 'local:import/x.qcow2', ssd: true }, 'file'),
    'local:0,import-from=local:import/x.qcow2,ssd=1',
  );
  assert.equal(parseSize('32G'), 32 * 1024 ** 3);
  assert.equal(parseSize('512M'), 512 * 1024 ** 2);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('nonsense'), undefined);
});

test('QEMU config: networks with cloud-init addresses, disks, cdrom, agent', () => {
  const c = parseGuestConfig('qemu', {
    name: 'web1',
    cores: 2,
    sockets: 1,
    memory: '4096',
    onboot: 1,
    agent: 'enabled=1,fstrim_cloned_disks=1',
    tags: 'prod;web',
    boot: 'order=scsi0;ide2',
    net0: 'virtio=BC:24:11:AA:BB:01,bridge=vmbr0,firewall=1,tag=30',
    net1: 'e1000=BC:24:11:AA:BB:02,bridge=vmbr1,rate=100,link_down=1',
    ipconfig0: 'ip=10.0.0.5/24,gw=10.0.0.1',
    scsi0: 'local-lvm:vm-100-disk-0,size=32G,iothread=1,ssd=1,discard=on,cache=writeback',
    ide2: 'local:iso/debian.iso,media=cdrom,size=600M',
    efidisk0: 'local-lvm:vm-100-disk-1,efitype=4m,size=4M',
    virtio1: '/dev/disk/by-id/ata-X,backup=0,serial=ABC',
    digest: 'abc123',
  });
  assert.equal(c.name, 'web1');
  assert.equal(c.memoryMiB, 4096);
  assert.equal(c.onboot, true);
  assert.equal(c.agentEnabled, true);
  assert.deepEqual(c.tags, ['prod', 'web']);
  assert.equal(c.networks.length, 2);
  const [n0, n1] = c.networks;
  assert.equal(n0?.interface, 'net0');
  assert.equal(n0?.model, 'virtio');
  assert.equal(n0?.macAddress, 'BC:24:11:AA:BB:01');
  assert.equal(n0?.bridge, 'vmbr0');
  assert.equal(n0?.vlan, 30);
  assert.equal(n0?.firewall, true);
  assert.equal(n0?.ip, '10.0.0.5/24');
  assert.equal(n0?.gateway, '10.0.0.1');
  assert.equal(n1?.model, 'e1000');
  assert.equal(n1?.rate, 100);
  assert.equal(n1?.linkDown, true);
  assert.equal(n1?.ip, undefined);
  const disk = (id: string) => c.disks.find((d) => d.device === id);
  assert.equal(disk('scsi0')?.storage, 'local-lvm');
  assert.equal(disk('scsi0')?.sizeBytes, 32 * 1024 ** 3);
  assert.equal(disk('scsi0')?.iothread, true);
  assert.equal(disk('scsi0')?.ssd, true);
  assert.equal(disk('scsi0')?.discard, 'on');
  assert.equal(disk('scsi0')?.cache, 'writeback');
  assert.equal(disk('scsi0')?.backup, true);
  assert.equal(disk('ide2')?.isCdrom, true);
  assert.equal(disk('efidisk0')?.bus, 'efidisk');
  assert.equal(disk('virtio1')?.storage, undefined);
  assert.equal(disk('virtio1')?.backup, false);
  assert.equal(disk('virtio1')?.serial, 'ABC');
  assert.equal(c.digest, 'abc123');
});

test('QEMU 8 memory property string and agent as number', () => {
  const c = parseGuestConfig('qemu', { memory: 'current=2048', agent: 1 });
  assert.equal(c.memoryMiB, 2048);
  assert.equal(c.agentEnabled, true);
  assert.equal(parseGuestConfig('qemu', { agent: '0' }).agentEnabled, false);
});

test('LXC config: net[n] with name/hwaddr/ip/gw, rootfs and mount points', () => {
  const c = parseGuestConfig('lxc', {
    hostname: 'ct1',
    memory: 512,
    swap: 256,
    net0: 'name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=10.0.0.9/24,gw=10.0.0.1,type=veth,firewall=1',
    net1: 'name=eth1,bridge=vmbr1,ip=dhcp,ip6=auto',
    rootfs: 'local-lvm:vm-200-disk-0,size=8G',
    mp0: 'local-lvm:vm-200-disk-1,mp=/srv/data,size=16G,backup=1',
    mp1: '/mnt/host,mp=/mnt/shared,ro=1',
  });
  assert.equal(c.name, 'ct1');
  assert.equal(c.memoryMiB, 512);
  assert.equal(c.swapMiB, 256);
  assert.equal(c.networks[0]?.name, 'eth0');
  assert.equal(c.networks[0]?.macAddress, 'BC:24:11:00:00:01');
  assert.equal(c.networks[0]?.ip, '10.0.0.9/24');
  assert.equal(c.networks[0]?.gateway, '10.0.0.1');
  assert.equal(c.networks[0]?.model, 'veth');
  assert.equal(c.networks[1]?.ip, 'dhcp');
  assert.equal(c.networks[1]?.ip6, 'auto');
  assert.deepEqual(
    c.disks.map((d) => [d.device, d.mountPoint, d.storage, d.size]),
    [
      ['rootfs', '/', 'local-lvm', '8G'],
      ['mp0', '/srv/data', 'local-lvm', '16G'],
      ['mp1', '/mnt/shared', undefined, undefined],
    ],
  );
  assert.equal(c.disks[2]?.readOnly, true);
  assert.equal(c.disks[2]?.backup, false, 'mount points are not backed up unless asked');
  assert.equal(c.disks[1]?.backup, true);
});

test('sshkeys use encodeURIComponent-style escaping: %20 for spaces, never +', () => {
  const keys = ['ssh-ed25519 AAAAC3Nza+/= alice@laptop', 'ssh-rsa AAAAB3 bob@host'];
  const encoded = encodeSshKeys(keys);
  assert.equal(encoded, 'ssh-ed25519%20AAAAC3Nza%2B%2F%3D%20alice%40laptop%0Assh-rsa%20AAAAB3%20bob%40host');
  // PVE's `urlencoded` format accepts only these characters.
  assert.match(encoded, /^[-%a-zA-Z0-9_.!~*'()]*$/);
  assert.deepEqual(decodeSshKeys(encoded), keys);
});

test('cloud-init parameters and a VM from a cloud image with import-from', () => {
  const p = cloudInitParams({
    ciuser: 'debian',
    sshKeys: 'ssh-ed25519 AAA me@x',
    ipconfig: [{ ip: '10.0.0.5/24', gw: '10.0.0.1' }, { ip: 'dhcp' }],
    nameserver: ['1.1.1.1', '9.9.9.9'],
    ciupgrade: false,
  });
  assert.deepEqual(p, {
    ciuser: 'debian',
    sshkeys: 'ssh-ed25519%20AAA%20me%40x',
    ipconfig0: 'ip=10.0.0.5/24,gw=10.0.0.1',
    ipconfig1: 'ip=dhcp',
    nameserver: '1.1.1.1 9.9.9.9',
    ciupgrade: false,
  });
  const vm = cloudImageVmParams({
    vmid: 9000,
    name: 'debian-12',
    image: 'local:import/debian-12-genericcloud-amd64.qcow2',
    storage: 'local-lvm',
    memoryMiB: 2048,
    cloudInit: { ciuser: 'debian' },
  });
  assert.equal(vm.scsi0, 'local-lvm:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2');
  assert.equal(vm.ide2, 'local-lvm:cloudinit');
  assert.equal(vm.memory, '2048');
  assert.equal(vm.ciuser, 'debian');
  assert.equal(vm.agent, '1');
  assert.throws(() => cloudImageVmParams({ vmid: 9001, image: 'not a volume', storage: 'local' }));
});
