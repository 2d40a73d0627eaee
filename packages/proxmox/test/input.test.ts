import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError, ProxmoxClient } from '@vmplane/proxmox';
import { sim, tokenClient, violations } from './sim.js';

/** The typed local refusal: InvalidArgumentError of this backend, naming the argument. */
function refusal(argument: string) {
  return (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.backend, 'proxmox', e.message);
    assert.equal(e.argument, argument, e.message);
    return true;
  };
}

/** A Promise-returning call must reject, never throw before returning its promise. */
async function rejects(call: () => Promise<unknown>, argument: string, what: string) {
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (error) {
    assert.fail(`${what} threw synchronously instead of rejecting: ${String(error)}`);
  }
  await assert.rejects(pending, refusal(argument), what);
}

const BAD_VMIDS: unknown[] = [0, -1, 99, 1e12, 1_000_000_000, 1.5, Number.NaN, 'abc', '0100', '10a', '', ' 100', null];
const BAD_NODES: unknown[] = [
  '',
  '.',
  '..',
  'a/b',
  '../pve1',
  'pve1\n',
  '-pve1',
  'pve1-',
  'pve 1',
  'pve%2F1',
  42,
  null,
];

test('factories throw the typed error, with the backend, for every VMID and node PVE would refuse', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1' }] });
  const pve = tokenClient(s);
  for (const vmid of BAD_VMIDS) {
    assert.throws(() => pve.qemu('pve1', vmid as number), refusal('vmid'), `qemu vmid ${String(vmid)}`);
    assert.throws(() => pve.lxc('pve1', vmid as number), refusal('vmid'), `lxc vmid ${String(vmid)}`);
  }
  for (const node of BAD_NODES) {
    assert.throws(() => pve.node(node as string), refusal('node'), `node ${JSON.stringify(node)}`);
    assert.throws(() => pve.nodes.get(node as string), refusal('node'));
    assert.throws(() => pve.qemu(node as string, 100), refusal('node'));
    assert.throws(() => pve.lxc(node as string, 100), refusal('node'));
  }
  // A resource id of the other guest type.
  assert.throws(() => pve.qemu('pve1', 'lxc/100'), refusal('vmid'));
  assert.throws(() => pve.lxc('pve1', 'qemu/100'), refusal('vmid'));
  assert.equal(pve.qemu('pve1', 'qemu/100').vmid, 100);
  assert.equal(pve.lxc('pve1', '200').vmid, 200);
  // Storage ids (pve-storage-id).
  for (const storage of ['', '.', '..', 'a', 'local/x', '1local', 'local\n', 'lo cal']) {
    assert.throws(() => pve.node('pve1').storage(storage), refusal('storage'), JSON.stringify(storage));
  }
  assert.throws(() => pve.tasks.get('UPID:pve1:nope'), refusal('upid'));
  assert.equal(s.requests.total, 0);
});

test('every Promise-returning call rejects, with nothing sent, for identifiers PVE would refuse', async () => {
  const s = await sim({ nodes: 2, guests: [{ vmid: 100, node: 'pve1' }] });
  const pve = tokenClient(s);
  const vm = pve.qemu('pve1', 100);
  const ct = pve.lxc('pve1', 200);
  const node = pve.node('pve1');
  const storage = node.storage('local');
  const cases: Array<[string, string, () => Promise<unknown>]> = [
    ['resize size', 'size', () => vm.resize('scsi0', 'lots')],
    ['resize disk', 'disk', () => vm.resize('scsi0;rm', '+1G')],
    ['resize LXC disk on a VM', 'disk', () => vm.resize('rootfs', '+1G')],
    ['resize VM disk on a CT', 'disk', () => ct.resize('scsi0', '+1G')],
    ['snapshot name', 'name', () => vm.snapshots.create('has spaces')],
    ['snapshot name with /', 'name', () => vm.snapshots.delete('a/b')],
    ['snapshot name ..', 'name', () => vm.snapshots.rollback('..')],
    ['snapshot name reserved', 'name', () => vm.snapshots.create('current')],
    ['snapshot name too long', 'name', () => ct.snapshots.config('s'.repeat(41))],
    ['snapshot name vzdump (LXC)', 'name', () => ct.snapshots.create('vzdump')],
    ['config snapshot', 'snapshot', () => vm.rawConfig({ snapshot: '../x' })],
    ['migrate target', 'target', () => vm.migrate('pve2/../x')],
    ['migrate target storage', 'targetStorage', () => vm.migrate('pve2', { targetStorage: 'a b' })],
    ['LXC migrate target', 'target', () => ct.migrate('-pve2')],
    ['precondition target', 'target', () => vm.migratePrecondition('a\nb')],
    ['clone newid', 'newid', () => vm.clone({ newid: 0 })],
    ['clone target', 'target', () => vm.clone({ target: '../pve2' })],
    ['clone storage', 'storage', () => vm.clone({ storage: 'x/y' })],
    ['clone pool', 'pool', () => vm.clone({ pool: 'a b' })],
    ['clone snapname', 'snapname', () => vm.clone({ snapname: 'not ok' })],
    ['suspend state storage', 'stateStorage', () => vm.suspend({ toDisk: true, stateStorage: '../x' })],
    ['delete keys', 'delete', () => vm.updateConfig({}, { delete: ['ok', 'not,ok'] })],
    ['config key', 'values', () => vm.updateConfig({ 'bad key': 1 })],
    ['digest', 'digest', () => ct.updateConfig({ cores: 1 }, { digest: 'not hex' })],
    ['cores', 'cores', () => vm.setResources({ cores: 0 })],
    ['template disk', 'disk', () => vm.template({ disk: 'sda' })],
    ['termproxy serial', 'serial', () => vm.termProxy({ serial: 'serial9' as 'serial0' })],
    ['agent exec empty', 'command', () => vm.agent.exec([])],
    ['agent exec empty program', 'command', () => vm.agent.exec([''])],
    ['agent exec NUL', 'command', () => vm.agent.execute(['echo', 'a\0b'])],
    ['agent exec-status pid', 'pid', () => vm.agent.execStatus(-1)],
    ['agent file', 'file', () => vm.agent.fileRead('')],
    ['agent file content', 'content', () => vm.agent.fileWrite('/tmp/x', 42 as unknown as string)],
    ['agent password', 'password', () => vm.agent.setUserPassword('root', 'abc')],
    ['create vmid', 'vmid', () => node.qemu.create({ vmid: -1 })],
    ['create pool', 'pool', () => node.qemu.create({ vmid: 300, pool: 'a b' })],
    ['cloud image volume', 'image', () => node.qemu.createFromCloudImage({ vmid: 300, image: 'x', storage: 'local' })],
    [
      'cloud image volume with a comma',
      'image',
      () => node.qemu.createFromCloudImage({ vmid: 300, image: 'local:import/a.qcow2,size=1', storage: 'local' }),
    ],
    [
      'cloud image bridge',
      'bridge',
      () =>
        node.qemu.createFromCloudImage({
          vmid: 300,
          image: 'local:import/a.qcow2',
          storage: 'local',
          bridge: 'vmbr0,firewall=1',
        }),
    ],
    ['lxc create vmid', 'vmid', () => node.lxc.create(1e12, 'local:vztmpl/x.tar.zst')],
    ['lxc create template', 'ostemplate', () => node.lxc.create(300, 'x.tar.zst')],
    ['node tasks vmid', 'vmid', () => node.tasks({ vmid: 5 })],
    ['node tasks limit', 'limit', () => node.tasks({ limit: -1 })],
    ['storage content vmid', 'vmid', () => storage.content({ vmid: 'abc' as unknown as number })],
    ['storages content', 'content', () => node.storages({ content: 'nope' as 'iso' })],
    ['vncshell width', 'width', () => node.vncShell({ width: 1 })],
    ['termproxy cmd', 'cmd', () => node.termProxy({ cmd: 'rm' as 'login' })],
    ['tasks on a node', 'node', () => pve.tasks.listOnNode('a/b')],
    ['task status', 'upid', () => pve.tasks.status('nope')],
    ['next id', 'vmid', () => pve.cluster.nextId({ vmid: 1 })],
    ['resources type', 'type', () => pve.cluster.resources({ type: 'qemu' as 'vm' })],
    ['view concurrency', 'concurrency', () => pve.cluster.view({ concurrency: 0 })],
    ['timeout', 'timeout', () => pve.nodes.list({ timeout: -1 })],
    ['timeout text', 'timeout', () => vm.start({ timeout: 'abc' as unknown as number })],
    ['signal', 'signal', () => vm.stop({ signal: {} as AbortSignal })],
    ['websocket port', 'port', () => vm.vncWebSocket({ port: 0, ticket: 't', cert: '', upid: '', user: '' })],
    ['wait interval', 'interval', async () => (await vm.start()).wait({ interval: -5 })],
  ];
  const before = s.requests.total;
  for (const [what, argument, call] of cases) await rejects(call, argument, what);
  // The last case started a VM (to have a task to wait for): that start is the only request.
  assert.equal(s.requests.total, before + 1, 'nothing else reached the server');
});

test('credentials and options are checked when the client is made', () => {
  const base = { baseUrl: 'http://127.0.0.1:9' };
  const bad: Array<[string, () => unknown]> = [
    ['tokenId', () => new ProxmoxClient({ ...base, tokenId: 'no-realm', tokenSecret: 'x' })],
    ['tokenId', () => new ProxmoxClient({ ...base, tokenId: 'root@pam!x', tokenSecret: 'x' })],
    ['tokenSecret', () => new ProxmoxClient({ ...base, tokenId: 'root@pam!ci', tokenSecret: 'a\r\nb' })],
    ['username', () => new ProxmoxClient({ ...base, username: 'ro ot', password: 'x' })],
    ['username', () => new ProxmoxClient({ ...base, username: 'root@pam/x', password: 'x' })],
    ['realm', () => new ProxmoxClient({ ...base, username: 'root', realm: 'p/am', password: 'x' })],
    ['password', () => new ProxmoxClient({ ...base, username: 'root', password: '' })],
    ['fingerprint', () => new ProxmoxClient({ ...base, tokenId: 'root@pam!ci', tokenSecret: 'x', fingerprint: 'AB' })],
    ['baseUrl', () => new ProxmoxClient({ baseUrl: 'ftp://x', tokenId: 'root@pam!ci', tokenSecret: 'x' })],
    ['baseUrl', () => new ProxmoxClient({ baseUrl: 'http://u:p@x', tokenId: 'root@pam!ci', tokenSecret: 'x' })],
    ['timeout', () => new ProxmoxClient({ ...base, tokenId: 'root@pam!ci', tokenSecret: 'x', timeout: Number.NaN })],
  ];
  for (const [argument, make] of bad) assert.throws(make, refusal(argument), argument);
  // The secret never appears in the refusal.
  assert.throws(
    () => new ProxmoxClient({ ...base, tokenId: 'root@pam!ci', tokenSecret: 'sekrit value' }),
    (e: unknown) => e instanceof InvalidArgumentError && !e.message.includes('sekrit'),
  );
});

test('the simulator recorded no schema violations from this client', () => {
  assert.deepEqual(violations(), []);
});
