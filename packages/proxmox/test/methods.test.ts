import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmplaneError } from '@vmplane/proxmox';
import { sim, tokenClient } from './sim.js';

// Members that are not the public API (TypeScript's protected ones are visible at run time).
const INTERNAL = new Set(['constructor', 'p', 'task', 'refusal', 'checkMigrationTarget', 'interfacesIfAvailable']);

/** Every method an object offers, own and inherited, by name. */
function methods(o: object): Array<[string, (...args: unknown[]) => unknown]> {
  const out = new Map<string, (...args: unknown[]) => unknown>();
  for (let p: object | null = o; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (!INTERNAL.has(name) && !out.has(name) && typeof d?.value === 'function') out.set(name, d.value);
    }
  }
  return [...out];
}

// The synchronous ones: factories of resource objects and local helpers. Everything else returns a
// Promise (or an async iterator) and must never throw before returning it.
const SYNC = new Set([
  'client.node',
  'client.qemu',
  'client.lxc',
  'client.consoleUrl',
  'client.invalidateNode',
  'client.invalidateGuest',
  'client.clearCache',
  'nodes.get',
  'tasks.get',
  'node.storage',
  'node.consoleUrl',
  'node.invalidate',
  'vm.consoleUrl',
  'vm.invalidate',
  'ct.consoleUrl',
  'ct.invalidate',
]);

// Junk a JavaScript caller could pass anywhere: each must end in a typed error or a real answer.
const JUNK: unknown[][] = [
  [null, null, null, null],
  [1, 2, 3, 4],
  ['x', 'y', 'z', 'w'],
  [Symbol('s'), null],
  [[], []],
];

test('every public method: a Promise-returning one never throws synchronously, and every failure is typed', async () => {
  const s = await sim({
    nodes: 1,
    guests: [
      { vmid: 100, node: 'pve1', status: 'running', config: { agent: '1' } },
      { vmid: 200, node: 'pve1', type: 'lxc', status: 'running' },
    ],
  });
  const pve = tokenClient(s);
  const vm = pve.qemu('pve1', 100);
  const node = pve.node('pve1');
  const objects: Record<string, object> = {
    client: pve,
    cluster: pve.cluster,
    nodes: pve.nodes,
    tasks: pve.tasks,
    node,
    'node.qemu': node.qemu,
    'node.lxc': node.lxc,
    storage: node.storage('local'),
    vm,
    'vm.status': vm.status,
    agent: vm.agent,
    snapshots: vm.snapshots,
    ct: pve.lxc('pve1', 200),
    task: pve.tasks.get('UPID:pve1:00000001:00000001:00000001:qmstart:100:root@pam:'),
    transport: pve.transport,
  };
  const problems: string[] = [];
  let calls = 0;
  for (const [name, o] of Object.entries(objects)) {
    for (const [method, fn] of methods(o)) {
      if (method === 'close') continue;
      for (const args of JUNK) {
        const what = `${name}.${method}(${args.map((a) => (typeof a === 'symbol' ? 'Symbol' : JSON.stringify(a))).join(', ')})`;
        calls++;
        let result: unknown;
        try {
          result = fn.apply(o, args);
        } catch (error) {
          // Only factories and other synchronous helpers may throw, and then a typed error.
          if (!SYNC.has(`${name}.${method}`)) problems.push(`${what} threw synchronously: ${String(error)}`);
          else if (!(error instanceof VmplaneError)) problems.push(`${what} threw ${String(error)}`);
          continue;
        }
        if (result instanceof Promise) {
          await result.catch((error: unknown) => {
            if (!(error instanceof VmplaneError)) problems.push(`${what} rejected with ${String(error)}`);
          });
        } else if (result && typeof (result as AsyncGenerator).next === 'function') {
          const it = result as AsyncGenerator;
          await it.next().catch((error: unknown) => {
            if (!(error instanceof VmplaneError)) problems.push(`${what} iterated into ${String(error)}`);
          });
          await it.return(undefined).catch(() => {});
        }
      }
    }
  }
  assert.ok(calls > 300, `${calls} calls`);
  assert.deepEqual(problems, []);
});
