import type { InstallStageName } from '@vmplane/core';

/**
 * go-pve-qemu's install stages, in its order, written out here rather than imported from core: the
 * tests check core's order against this list.
 */
export const STAGES: readonly InstallStageName[] = [
  'preparation > checking VMID',
  'preparation > assigning IP',
  'preparation > validating CPU and RAM',
  'preparation > validating disk size',
  'preparation > setting default config values',
  'preparation > checking storage pool',
  'OS preparation > getting OS image',
  'OS preparation > validating OS image URL',
  'OS preparation > downloading OS image',
  'SSH preparation > checking SSH key',
  'VM creation > creating VM',
  'VM creation > importing disk image',
  'VM initialization > initializing configuration',
  'VM initialization > migrating VM',
  'VM initialization > waiting for ready',
  'VM initialization > SSH initialization',
  'VM initialization > rebooting VM',
  'VM initialization > finalizing',
];
