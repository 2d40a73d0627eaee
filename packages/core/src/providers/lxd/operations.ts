import { type CallOptions, callOptions, path, withDeadline } from '@vmplane/common';
import { type LxdClient, LxdOperation, type Operation } from '@vmplane/lxd';
import { InvalidRequestError, InvalidStateError } from '../../errors.js';
import type { LxdContext, LxdProviderOptions } from './context.js';
import { KEY_ID, KEY_OPERATION, parseSize } from './states.js';

const GiB = 2 ** 30;

/**
 * The storage pool of a new instance's root disk: the configured one, else the pool of the root
 * disk the profiles give (a later profile overrides an earlier one, as LXD applies them).
 */
export async function rootPoolOf(lxd: LxdClient, options: LxdProviderOptions, opts: CallOptions): Promise<string> {
  if (options.storagePool !== undefined) return options.storagePool;
  let pool: string | undefined;
  for (const name of options.profiles ?? ['default']) {
    const profile = await lxd.profiles.get(name, callOptions(opts));
    for (const device of Object.values(profile.devices ?? {})) {
      if (device.type === 'disk' && device.path === '/' && device.pool) pool = device.pool;
    }
  }
  if (pool === undefined) {
    throw new InvalidRequestError({
      message: `no profile of ${(options.profiles ?? ['default']).join(',')} has a root disk; set storagePool`,
      field: 'storagePool',
    });
  }
  return pool;
}

/** The root disk device of an instance (its name and fields), from the expanded devices. */
function rootDevice(devices: Record<string, Record<string, string>>): [string, Record<string, string>] | undefined {
  return Object.entries(devices).find(([, d]) => d.type === 'disk' && d.path === '/');
}

/**
 * Grows the root disk by `byGiB`. The current size is the root device's `size`, or the pool's
 * `volume.size` default when the device sets none; an unlimited root disk has nothing to grow
 * from, which is said rather than guessed. A profile's root device becomes a local override.
 */
export async function growRoot(lxd: LxdClient, name: string, byGiB: number, opts: CallOptions): Promise<number> {
  if (!Number.isInteger(byGiB) || byGiB < 1) {
    throw new InvalidRequestError({ message: 'a disk grows by a whole number of GiB from 1', field: 'byGiB' });
  }
  return withDeadline(callOptions(opts), 'lxd', async (d) => {
    const call = { signal: d.signal };
    const instance = await lxd.instances.get(name, call);
    const root = rootDevice(instance.expanded_devices ?? {});
    if (!root) throw new InvalidStateError({ state: 'without a root disk', action: 'grow the disk of' });
    const [device, fields] = root;
    let current = parseSize(fields.size);
    if (current === undefined && fields.pool) {
      current = parseSize((await lxd.storagePools.get(fields.pool, call)).config?.['volume.size']);
    }
    if (current === undefined) {
      throw new InvalidStateError({
        state: 'unlimited in size',
        action: 'grow the root disk of',
        message: `the root disk of ${name} has no size (neither the device nor the pool sets one): nothing to grow`,
      });
    }
    const next = current + byGiB * GiB;
    const size = next % GiB === 0 ? `${next / GiB}GiB` : `${next}B`;
    await lxd.instances.patch(name, { devices: { [device]: { ...fields, size } } }, call);
    return next;
  });
}

/**
 * Copies an instance into a new one (`lxc copy --instance-only`). The copy is the source's disk and
 * configuration, less what must stay unique: vmplane's id (the copy gets `vmid` when core reserved
 * one), the install that made it, a static address on a nic (LXD refuses a second instance with
 * the same one). LXD gives the copy new MACs.
 */
export async function copyInstance(
  lxd: LxdClient,
  source: string,
  name: string,
  opts: CallOptions & { vmid?: number | undefined },
): Promise<{ running: boolean; type: string }> {
  return withDeadline(callOptions(opts), 'lxd', async (d) => {
    const call = { signal: d.signal, timeout: Number.POSITIVE_INFINITY };
    const from = await lxd.instances.get(source, call);
    const config = { ...from.config };
    for (const key of Object.keys(config)) if (key.startsWith('volatile.')) delete config[key];
    // LXD fills a copy's config from the source for every key the request leaves out; an empty
    // value is how a key is left unset.
    for (const key of [KEY_ID, KEY_OPERATION]) if (key in config) config[key] = '';
    // The id core reserved for the copy, so that used() reports it as taken.
    if (opts.vmid !== undefined) config[KEY_ID] = String(opts.vmid);
    const devices: Record<string, Record<string, string>> = {};
    for (const [key, device] of Object.entries(from.devices ?? {})) {
      const copy = { ...device };
      if (copy.type === 'nic') {
        delete copy['ipv4.address'];
        delete copy['ipv6.address'];
      }
      devices[key] = copy;
    }
    const op = await lxd.instances.create(
      {
        name,
        architecture: from.architecture,
        config,
        devices,
        ephemeral: from.ephemeral,
        profiles: from.profiles,
        source: { type: 'copy', source, instance_only: true, live: false },
      },
      call,
    );
    await op.wait(call);
    return { running: from.status === 'Running', type: from.type };
  });
}

/**
 * Moves an instance to another cluster member (`lxc move --target`). A running instance is
 * stopped for the move and started again there: a live move needs CRIU (containers) or
 * `migration.stateful` (VMs), which vmplane does not set up.
 */
export async function migrateInstance(
  lxd: LxdClient,
  ctx: LxdContext,
  name: string,
  node: string,
  opts: CallOptions,
): Promise<void> {
  await withDeadline(callOptions(opts), 'lxd', async (d) => {
    const call = { signal: d.signal, timeout: Number.POSITIVE_INFINITY };
    const instance = await lxd.instances.get(name, call);
    const running = instance.status === 'Running';
    if (running) await lxd.instances.stop(name, call);
    const answer = await lxd.transport.request<Operation>({
      method: 'POST',
      path: path`/1.0/instances/${name}`,
      query: { target: node },
      body: { name, migration: true, live: false },
      project: ctx.project,
      ...call,
    });
    await new LxdOperation(lxd.transport, answer.metadata, ctx.project).wait(call);
    if (running) await lxd.instances.start(name, call);
  });
}
