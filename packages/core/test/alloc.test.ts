import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  AlreadyExistsError,
  CidrPool,
  ExhaustedError,
  GoPveQemuAllocator,
  InvalidRequestError,
  openStore,
  type SqlStore,
  type UsedResources,
} from '../src/index.js';

async function memory(t: TestContext): Promise<SqlStore> {
  const store = await openStore({ file: ':memory:' });
  t.after(() => store.close());
  return store;
}

function used(vmids: number[] = [], ipv4: string[] = []): UsedResources {
  return { vmids: new Set(vmids), ipv4: new Set(ipv4) };
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => String(a + i));

describe('store allocations', () => {
  it('allocates the first candidate neither held nor taken, until none is left', async (t) => {
    const { allocations } = await memory(t);
    const first = await allocations.allocate({ pool: 'p', owner: 'a', candidates: range(1, 4), taken: new Set(['1']) });
    assert.equal(first?.value, '2');
    assert.equal(first?.owner, 'a');
    assert.equal((await allocations.allocate({ pool: 'p', owner: 'b', candidates: range(1, 4) }))?.value, '1');
    assert.equal((await allocations.allocate({ pool: 'p', owner: 'c', candidates: range(1, 4) }))?.value, '3');
    // Another pool is another space.
    assert.equal((await allocations.allocate({ pool: 'q', owner: 'c', candidates: range(1, 4) }))?.value, '1');
    function* lazy() {
      yield* range(1, 4);
    }
    assert.equal((await allocations.allocate({ pool: 'p', owner: 'd', candidates: lazy() }))?.value, '4');
    assert.equal(await allocations.allocate({ pool: 'p', owner: 'e', candidates: range(1, 4) }), undefined);
  });

  it('claims an exact value: false when another holds it or the backend has it', async (t) => {
    const { allocations } = await memory(t);
    assert.equal(await allocations.claim({ pool: 'vmid', owner: 'a', value: '150' }), true);
    assert.equal(await allocations.claim({ pool: 'vmid', owner: 'a', value: '150' }), true, 'its own: no change');
    assert.equal(await allocations.claim({ pool: 'vmid', owner: 'b', value: '150' }), false);
    assert.equal(await allocations.claim({ pool: 'vmid', owner: 'b', value: '151', taken: new Set(['151']) }), false);
    assert.deepEqual(
      (await allocations.list()).map((a) => [a.value, a.owner]),
      [['150', 'a']],
    );
  });

  it('allocates and claims groups whole or not at all', async (t) => {
    const { allocations } = await memory(t);
    await allocations.claim({ pool: 'ip', owner: 'x', value: 'ip1' });
    const got = await allocations.allocateGroup({
      owner: 'a',
      candidates: [
        [
          { pool: 'id', value: '1' },
          { pool: 'ip', value: 'ip1' },
        ],
        [
          { pool: 'id', value: '2' },
          { pool: 'ip', value: 'ip2' },
        ],
      ],
    });
    assert.deepEqual(
      got?.map((a) => a.value),
      ['2', 'ip2'],
    );
    assert.equal(
      await allocations.claimGroup({
        owner: 'b',
        values: [
          { pool: 'id', value: '3' },
          { pool: 'ip', value: 'ip2' },
        ],
      }),
      false,
    );
    assert.deepEqual(await allocations.list({ owner: 'b' }), []);
    assert.equal(await allocations.list({ pool: 'id' }).then((l) => l.length), 1, 'id 1 stayed free');
    await assert.rejects(
      allocations.claimGroup({
        owner: 'b',
        values: [
          { pool: 'id', value: '5' },
          { pool: 'id', value: '5' },
        ],
      }),
      InvalidRequestError,
    );
  });

  it('transfers, releases by value and owner, and lists by pool and owner', async (t) => {
    const { allocations } = await memory(t);
    await allocations.claim({ pool: 'vmid', owner: 'op', value: '101' });
    await allocations.claim({ pool: 'ip', owner: 'op', value: '10.0.0.101' });
    await allocations.claim({ pool: 'vmid', owner: 'other', value: '102' });
    assert.equal(await allocations.transfer('op', 'inst'), 2);
    assert.deepEqual(
      (await allocations.list({ owner: 'inst' })).map((a) => a.pool),
      ['ip', 'vmid'],
    );
    assert.equal(await allocations.release('vmid', '102', 'inst'), false, 'not its owner');
    assert.equal(await allocations.release('vmid', '102', 'other'), true);
    assert.equal(await allocations.releaseOwner('inst', ['ip']), 1);
    assert.deepEqual(
      (await allocations.list()).map((a) => a.value),
      ['101'],
    );
    assert.equal(await allocations.releaseOwner('inst'), 1);
    assert.deepEqual(await allocations.list(), []);
  });
});

describe('GoPveQemuAllocator', () => {
  it('gives VMID N the address <a.b.c>.N of the gateway /24', async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.1' });
    assert.equal(alloc.network, '127.77.0.0/24');
    assert.equal(alloc.ipPool, 'ipv4:127.77.0.0/24');
    assert.equal(alloc.ipFor(105), '127.77.0.105');
    const got = await alloc.allocate({ owner: 'op', vmid: 105 });
    assert.deepEqual(got, { vmid: 105, ipv4: '127.77.0.105', prefixLength: 24, gateway: '127.77.0.1' });
    assert.deepEqual(
      (await store.allocations.list({ owner: 'op' })).map((a) => [a.pool, a.value]),
      [
        ['ipv4:127.77.0.0/24', '127.77.0.105'],
        ['vmid', '105'],
      ],
    );
  });

  it('hands out both ends of the range, then ExhaustedError', async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.1', ipStart: 252, ipEnd: 254 });
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await alloc.allocate({ owner: `op${i}` })).vmid);
    assert.deepEqual(got, [252, 253, 254]);
    await assert.rejects(alloc.allocate({ owner: 'op4' }), (e: unknown) => {
      assert.ok(e instanceof ExhaustedError);
      assert.match(e.message, /252\.\.254/);
      return true;
    });
    const low = new GoPveQemuAllocator(store.allocations, { gateway: '127.88.0.1', ipStart: 100, ipEnd: 100 });
    assert.equal((await low.allocate({ owner: 'x' })).vmid, 100);
  });

  it("never hands out the gateway's own octet", async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.101', ipStart: 100, ipEnd: 102 });
    assert.deepEqual(alloc.candidates(), [100, 102]);
    assert.equal((await alloc.allocate({ owner: 'a' })).vmid, 100);
    assert.equal((await alloc.allocate({ owner: 'b' })).vmid, 102);
    await assert.rejects(alloc.allocate({ owner: 'c' }), ExhaustedError);
    await assert.rejects(alloc.allocate({ owner: 'c', vmid: 101 }), InvalidRequestError);
  });

  it('skips VMIDs and addresses the backend holds', async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.1' });
    const got = await alloc.allocate({ owner: 'op', used: used([100, 102], ['127.77.0.101']) });
    assert.equal(got.vmid, 103);
    await assert.rejects(alloc.allocate({ owner: 'x', used: used([100, 102]), vmid: 102 }), AlreadyExistsError);
    await assert.rejects(
      alloc.allocate({ owner: 'x', used: used([], ['127.77.0.104']), vmid: 104 }),
      AlreadyExistsError,
    );
  });

  it('claims a requested id, or refuses it with a typed error', async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.1', ipStart: 100, ipEnd: 200 });
    assert.equal((await alloc.allocate({ owner: 'a', vmid: 150 })).ipv4, '127.77.0.150');
    await assert.rejects(alloc.allocate({ owner: 'b', vmid: 150 }), AlreadyExistsError);
    for (const bad of [99, 201, 300, 150.5, Number.NaN])
      await assert.rejects(alloc.allocate({ owner: 'b', vmid: bad }), (e: unknown) => {
        assert.ok(e instanceof InvalidRequestError);
        assert.equal(e.field, 'id');
        return true;
      });
    // The automatic choice steps over the claimed one.
    const auto = [];
    for (let i = 0; i < 51; i++) auto.push((await alloc.allocate({ owner: `o${i}` })).vmid);
    assert.ok(!auto.includes(150));
    assert.equal(auto.at(-1), 151);
  });

  it('takes a VMID and its address together: one held by someone else skips the pair', async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.1' });
    await store.allocations.claim({ pool: 'vmid', owner: 'elsewhere', value: '100' });
    const pool = new CidrPool(store.allocations, { cidr: '127.77.0.0/24', reserved: ['127.77.0.1'] });
    await pool.claim({ owner: 'lxd-guest', address: '127.77.0.101' });
    assert.equal((await alloc.allocate({ owner: 'op' })).vmid, 102);
    const values = (await store.allocations.list()).map((a) => `${a.pool}=${a.value}@${a.owner}`);
    assert.deepEqual(values.sort(), [
      'ipv4:127.77.0.0/24=127.77.0.101@lxd-guest',
      'ipv4:127.77.0.0/24=127.77.0.102@op',
      'vmid=100@elsewhere',
      'vmid=102@op',
    ]);
    await assert.rejects(alloc.allocate({ owner: 'x', vmid: 101 }), AlreadyExistsError);
    assert.deepEqual(await store.allocations.list({ owner: 'x' }), []);
  });

  it('releases what an owner holds, and the id is handed out again only then', async (t) => {
    const store = await memory(t);
    const alloc = new GoPveQemuAllocator(store.allocations, { gateway: '127.77.0.1' });
    await store.allocations.claim({ pool: 'other', owner: 'op', value: 'kept' });
    assert.equal((await alloc.allocate({ owner: 'op' })).vmid, 100);
    assert.equal((await alloc.allocate({ owner: 'op2' })).vmid, 101);
    await store.allocations.transfer('op', 'instance-1');
    assert.equal(await alloc.release('instance-1'), 2);
    assert.deepEqual(
      (await store.allocations.list({ owner: 'instance-1' })).map((a) => a.pool),
      ['other'],
      'other pools are not its to release',
    );
    assert.equal((await alloc.allocate({ owner: 'op3' })).vmid, 100);
  });

  it('refuses a bad configuration with a clear message', async (t) => {
    const store = await memory(t);
    const bad: [Parameters<typeof make>[0], RegExp, string][] = [
      [{ gateway: 'gw' }, /not an IPv4 address/, 'GATEWAY'],
      [{ gateway: '127.77.0' }, /not an IPv4 address/, 'GATEWAY'],
      [{ gateway: '127.77.0.01' }, /not an IPv4 address/, 'GATEWAY'],
      [{ gateway: '127.77.0.0' }, /network or broadcast/, 'GATEWAY'],
      [{ gateway: '127.77.0.255' }, /network or broadcast/, 'GATEWAY'],
      [
        { gateway: '127.77.0.1', ipStart: 99 },
        /ASSIGN_IP_START must be a whole number from 100 to 254/,
        'ASSIGN_IP_START',
      ],
      [{ gateway: '127.77.0.1', ipEnd: 255 }, /ASSIGN_IP_END must be .* 100 to 254/, 'ASSIGN_IP_END'],
      [{ gateway: '127.77.0.1', ipStart: 100.5 }, /whole number/, 'ASSIGN_IP_START'],
      [{ gateway: '127.77.0.1', ipStart: 200, ipEnd: 150 }, /above ASSIGN_IP_END/, 'ASSIGN_IP_START'],
    ];
    function make(config: ConstructorParameters<typeof GoPveQemuAllocator>[1]) {
      return new GoPveQemuAllocator(store.allocations, config);
    }
    for (const [config, message, field] of bad)
      assert.throws(
        () => make(config),
        (e: unknown) => e instanceof InvalidRequestError && message.test(e.message) && e.field === field,
        JSON.stringify(config),
      );
  });

  it("reads go-pve-qemu's environment as go-pve-qemu does", async (t) => {
    const store = await memory(t);
    const env = (e: Record<string, string>) => {
      const a = GoPveQemuAllocator.fromEnv(store.allocations, e);
      return [a.start, a.end];
    };
    assert.deepEqual(env({ GATEWAY: '127.77.0.1' }), [100, 254]);
    assert.deepEqual(env({ GATEWAY: '127.77.0.1', ASSIGN_IP_START: '0', ASSIGN_IP_END: '0' }), [100, 254]);
    assert.deepEqual(env({ GATEWAY: '127.77.0.1', ASSIGN_IP_START: '50', ASSIGN_IP_END: '300' }), [100, 254]);
    assert.deepEqual(env({ GATEWAY: '127.77.0.1', ASSIGN_IP_START: 'x', ASSIGN_IP_END: '2x' }), [100, 254]);
    assert.deepEqual(env({ GATEWAY: '127.77.0.1', ASSIGN_IP_START: '200', ASSIGN_IP_END: '150' }), [150, 200]);
    assert.throws(() => env({}), /GATEWAY environment variable is required/);
    // Swapped below 100 is no VMID Proxmox takes: refused rather than scanned.
    assert.throws(() => env({ GATEWAY: '127.77.0.1', ASSIGN_IP_END: '50' }), InvalidRequestError);
  });
});

describe('CidrPool', () => {
  it('skips the network, broadcast and reserved addresses, lowest first', async (t) => {
    const store = await memory(t);
    const pool = new CidrPool(store.allocations, { cidr: '10.55.0.0/30' });
    assert.equal(pool.pool, 'ipv4:10.55.0.0/30');
    assert.equal(pool.size, 2);
    assert.deepEqual([...pool.addresses()], ['10.55.0.1', '10.55.0.2']);
    assert.deepEqual(await pool.allocate({ owner: 'a' }), { ipv4: '10.55.0.1' });
    assert.deepEqual(await pool.allocate({ owner: 'b' }), { ipv4: '10.55.0.2' });
    await assert.rejects(pool.allocate({ owner: 'c' }), ExhaustedError);

    const lan = new CidrPool(store.allocations, { cidr: '127.78.0.0/24', reserved: ['127.78.0.1', '127.78.0.2'] });
    assert.equal(lan.size, 252);
    assert.deepEqual(await lan.allocate({ owner: 'a' }), { ipv4: '127.78.0.3' });
    assert.equal(lan.isAllocatable('127.78.0.255'), false);
    assert.equal(lan.isAllocatable('127.78.0.0'), false);
    assert.equal(lan.isAllocatable('127.78.0.254'), true);
  });

  it('skips what the backend holds, from `taken` or `used`', async (t) => {
    const store = await memory(t);
    const pool = new CidrPool(store.allocations, { cidr: '10.55.0.0/24', reserved: ['10.55.0.1'] });
    assert.deepEqual(await pool.allocate({ owner: 'a', taken: new Set(['10.55.0.2']) }), { ipv4: '10.55.0.3' });
    assert.deepEqual(await pool.allocate({ owner: 'b', used: used([], ['10.55.0.2', '10.55.0.4']) }), {
      ipv4: '10.55.0.5',
    });
  });

  it('claims an exact address, or refuses it with a typed error', async (t) => {
    const store = await memory(t);
    const pool = new CidrPool(store.allocations, { cidr: '10.55.0.0/24', reserved: ['10.55.0.1'] });
    assert.deepEqual(await pool.claim({ owner: 'a', address: '10.55.0.50' }), { ipv4: '10.55.0.50' });
    await assert.rejects(pool.claim({ owner: 'b', address: '10.55.0.50' }), AlreadyExistsError);
    await assert.rejects(
      pool.claim({ owner: 'b', address: '10.55.0.51', taken: new Set(['10.55.0.51']) }),
      AlreadyExistsError,
    );
    for (const bad of ['10.55.0.0', '10.55.0.255', '10.55.0.1', '10.55.1.5', 'nope'])
      await assert.rejects(pool.claim({ owner: 'b', address: bad }), InvalidRequestError, bad);
    assert.equal(await pool.release('a'), 1);
    assert.deepEqual(await pool.claim({ owner: 'b', address: '10.55.0.50' }), { ipv4: '10.55.0.50' });
  });

  it('refuses a CIDR that is not one, and reserved addresses outside it', async (t) => {
    const store = await memory(t);
    for (const cidr of ['10.55.0.1/24', '10.55.0.0', '10.55.0.0/33', '10.55.0.0/31', '10.55.0.0/0', '10.55.0/24', 'x'])
      assert.throws(() => new CidrPool(store.allocations, { cidr }), InvalidRequestError, cidr);
    assert.throws(
      () => new CidrPool(store.allocations, { cidr: '10.55.0.0/24', reserved: ['10.56.0.1'] }),
      /outside 10\.55\.0\.0\/24/,
    );
    assert.throws(
      () => new CidrPool(store.allocations, { cidr: '10.55.0.0/24', reserved: ['x'] }),
      InvalidRequestError,
    );
  });
});
