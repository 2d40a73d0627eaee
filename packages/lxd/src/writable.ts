import type {
  Certificate,
  CertificatePut,
  Image,
  ImageAliasesEntry,
  ImageAliasesEntryPut,
  ImagePut,
  Instance,
  InstancePut,
  InstanceSnapshot,
  InstanceSnapshotPut,
  Network,
  NetworkPut,
  Profile,
  ProfilePut,
  Project,
  ProjectPut,
  Server,
  ServerPut,
  StoragePool,
  StoragePoolPut,
  StorageVolume,
  StorageVolumePut,
} from './types/api.js';

function pick<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (value[k] !== undefined) out[k] = value[k];
  return out;
}

/**
 * The writable part of an object, ready to send back with PUT (the Go client's `Writable()`).
 * Read-only fields (status, created_at, expanded_*) are dropped.
 */
export const writable = {
  instance: (i: Instance): InstancePut =>
    pick(i, ['architecture', 'config', 'description', 'devices', 'ephemeral', 'profiles', 'stateful']),
  snapshot: (s: InstanceSnapshot): InstanceSnapshotPut => pick(s, ['expires_at']),
  image: (i: Image): ImagePut => pick(i, ['auto_update', 'expires_at', 'profiles', 'properties', 'public']),
  imageAlias: (a: ImageAliasesEntry): ImageAliasesEntryPut => pick(a, ['description', 'target']),
  network: (n: Network): NetworkPut => pick(n, ['config', 'description']),
  profile: (p: Profile): ProfilePut => pick(p, ['config', 'description', 'devices']),
  project: (p: Project): ProjectPut => pick(p, ['config', 'description']),
  server: (s: Server): ServerPut => pick(s, ['config']),
  storagePool: (p: StoragePool): StoragePoolPut => pick(p, ['config', 'description']),
  storageVolume: (v: StorageVolume): StorageVolumePut => pick(v, ['config', 'description']),
  certificate: (c: Certificate): CertificatePut => pick(c, ['certificate', 'name', 'projects', 'restricted', 'type']),
};
