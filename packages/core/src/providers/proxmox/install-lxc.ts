import { InvalidRequestError } from '../../errors.js';
import type { ProxmoxRef } from '../../model/instance.js';
import type { InstallPlan, InstallSpec, InstallState } from '../provider.js';
import { type ProxmoxGuests, TIMEOUTS } from './guests.js';
import { commonStages, type InstallFacts, need } from './install.js';
import { UNDO } from './undo.js';
import { guestName, runTask } from './util.js';

/**
 * A container's install: the same stages, most of which have nothing to do for LXC. The image is
 * an OS template already on a storage (`local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst`);
 * PVE makes the root file system, sets the root password and SSH keys and the host name at create,
 * so there is no download, no disk import, no SSH initialization and no reboot. PVE's API runs no
 * commands in a container, so the password goes to PVE's create call (over HTTPS, redacted from
 * the client's logs), not to the guest's stdin.
 */
export function containerInstallPlan(g: ProxmoxGuests, spec: InstallSpec): InstallPlan {
  const facts: InstallFacts = {};
  const common = commonStages(g, spec, facts);
  let template: { storage: string; volid: string } | undefined;
  const refOf = (state: InstallState): ProxmoxRef => need(state.ref, 'container') as ProxmoxRef;
  const skip = async () => ({ skipped: true });

  return {
    'preparation > checking VMID': common.checkVmid,
    'preparation > assigning IP': common.assignIp,
    'preparation > validating CPU and RAM': common.validateCpuRam,
    'preparation > validating disk size': common.validateDisk,

    async 'preparation > setting default config values'(ctx, state) {
      const m = /^([a-z][a-z0-9_.-]*):vztmpl\/([^/\s,=]+)$/i.exec(spec.image);
      if (!m?.[1]) {
        throw new InvalidRequestError({
          message: `a container installs from an OS template like local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst, not ${JSON.stringify(spec.image)}`,
          field: 'image',
        });
      }
      template = { storage: m[1], volid: spec.image };
      facts.user = 'root';
      facts.name = guestName(spec.name);
      state.node = need(facts.node, 'node');
      state.storage = g.o.storage;
      await ctx.log(`hostname ${facts.name}, node ${state.node}, rootfs on ${g.o.storage}, template ${spec.image}`);
      return {};
    },

    async 'preparation > checking storage pool'(ctx) {
      const node = need(facts.node, 'node');
      await common.checkStorage(ctx, node, g.o.storage, 'rootdir');
      await common.checkStorage(ctx, node, need(template, 'template').storage, 'vztmpl');
      return {};
    },

    async 'OS preparation > getting OS image'(ctx, state) {
      const t = need(template, 'template');
      const node = need(facts.node, 'node');
      const content = await g.pve
        .node(node)
        .storage(t.storage)
        .content({ content: 'vztmpl', signal: ctx.signal, timeout: TIMEOUTS.read });
      if (!content.some((c) => c.volid === t.volid)) {
        throw new InvalidRequestError({ message: `template ${t.volid} is not on node ${node}`, field: 'image' });
      }
      state.imageVolume = t.volid;
      await ctx.log(`template ${t.volid} found`);
      return { message: `OS template: ${t.volid}` };
    },
    'OS preparation > validating OS image URL': skip,
    'OS preparation > downloading OS image': async () => ({ renamedTo: 'OS preparation > using OS image' }),
    'SSH preparation > checking SSH key': common.checkKey,

    async 'VM creation > creating VM'(ctx, state) {
      const node = need(facts.node, 'node');
      const vmid = need(state.vmid, 'VMID');
      const ip = need(state.ipv4, 'address');
      const keys = [need(facts.key, 'SSH key').publicKey, ...(spec.sshPublicKey ? [spec.sshPublicKey.trim()] : [])];
      facts.destroyUndo = await ctx.registerUndo(UNDO.destroyVm, { node, vmid, kind: 'lxc' });
      await ctx.log(`pct create ${vmid} ${need(template, 'template').volid} on ${node}`);
      await runTask(
        { signal: ctx.signal, timeout: 30 * 60_000 },
        (o) =>
          g.pve.node(node).lxc.create(
            vmid,
            need(template, 'template').volid,
            {
              hostname: need(facts.name, 'name'),
              cores: spec.vcpus,
              memory: spec.memoryMiB,
              rootfs: `${g.o.storage}:${spec.diskGiB}`,
              net0: `name=eth0,bridge=${g.o.bridge},ip=${ip}/${g.o.prefixLength},gw=${g.o.gateway}`,
              'ssh-public-keys': keys.join('\n'),
              unprivileged: true,
              tags: 'vmplane',
              ...(g.o.nameserver ? { nameserver: g.o.nameserver } : {}),
              ...(spec.password !== undefined ? { password: spec.password } : {}),
            },
            o,
          ),
        (l) => ctx.log(l),
      );
      state.ref = { type: 'proxmox', node, vmid, kind: 'lxc' };
      return {};
    },
    'VM creation > importing disk image': skip,
    'VM initialization > initializing configuration': async (ctx, state) => {
      const ref = refOf(state);
      const config = await g.pve
        .lxc(ref.node, ref.vmid)
        .config({ signal: ctx.signal, timeout: TIMEOUTS.read, fresh: true });
      await ctx.log(
        `rootfs ${config.disks.find((d) => d.device === 'rootfs')?.volume ?? '?'}, net0 ${config.networks[0]?.ip ?? '?'}`,
      );
      return {};
    },

    async 'VM initialization > migrating VM'(ctx, state) {
      const ref = refOf(state);
      if (spec.targetNode === undefined || spec.targetNode === ref.node) return { skipped: true };
      const to = spec.targetNode;
      await runTask(
        { signal: ctx.signal, timeout: 60 * 60_000 },
        (o) => g.pve.lxc(ref.node, ref.vmid).migrate(to, o),
        (l) => ctx.log(l),
      );
      state.ref = { ...ref, node: to };
      state.node = to;
      await facts.destroyUndo?.update({ node: to, vmid: ref.vmid, kind: 'lxc' });
      return { message: `container migrated to node ${to}` };
    },

    async 'VM initialization > waiting for ready'(ctx, state) {
      const ref = refOf(state);
      await runTask({ signal: ctx.signal, timeout: TIMEOUTS.action }, (o) => g.pve.lxc(ref.node, ref.vmid).start(o));
      await g.waitReady(ref, {
        signal: ctx.signal,
        timeout: g.o.bootTimeoutMs,
        ...(spec.readiness === 'ssh' ? { readiness: 'ssh' as const } : {}),
        log: (l) => ctx.log(l),
      });
      await ctx.log(`container ${ref.vmid} runs`);
      return {};
    },
    'VM initialization > SSH initialization': skip,
    'VM initialization > rebooting VM': skip,
    'VM initialization > finalizing': common.finalize,
  };
}
