import { type CallOptions, InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from './errors.js';
import { EventStream, type EventsOptions } from './events.js';
import { Certificates } from './resources/certificates.js';
import { ClusterResource } from './resources/cluster.js';
import { Images } from './resources/images.js';
import { Instances } from './resources/instances.js';
import { Networks } from './resources/networks.js';
import { Operations } from './resources/operations.js';
import { Profiles } from './resources/profiles.js';
import { Projects } from './resources/projects.js';
import { ServerResource } from './resources/server.js';
import { StoragePools } from './resources/storage.js';
import { Warnings } from './resources/warnings.js';
import { SimpleStreamsClient, type SimpleStreamsOptions } from './simplestreams.js';
import { discoverSocket } from './socket.js';
import { LxdTransport, type LxdTransportOptions } from './transport.js';
import type { Server as ServerInfo } from './types/api.js';

export interface LxdConnectOptions extends LxdTransportOptions, Pick<CallOptions, 'signal'> {
  /** Skip reading /1.0 at connect time (then `hasExtension` answers after `refreshServer()`). */
  skipGetServer?: boolean;
}

/**
 * A client for one LXD daemon, local (unix socket) or remote (HTTPS with a client certificate).
 *
 *   const lxd = await LxdClient.connect();
 *   await (await lxd.instances.createFromImage('c1', { alias: 'busybox' })).wait();
 */
export class LxdClient {
  readonly transport: LxdTransport;
  readonly server: ServerResource;
  readonly instances: Instances;
  readonly images: Images;
  readonly networks: Networks;
  readonly profiles: Profiles;
  readonly storagePools: StoragePools;
  readonly certificates: Certificates;
  readonly projects: Projects;
  readonly cluster: ClusterResource;
  readonly operations: Operations;
  readonly warnings: Warnings;
  #info: ServerInfo | undefined;

  constructor(transport: LxdTransport) {
    this.transport = transport;
    this.server = new ServerResource(transport);
    this.instances = new Instances(transport);
    this.images = new Images(transport);
    this.networks = new Networks(transport);
    this.profiles = new Profiles(transport);
    this.storagePools = new StoragePools(transport);
    this.certificates = new Certificates(transport);
    this.projects = new Projects(transport);
    this.cluster = new ClusterResource(transport);
    this.operations = new Operations(transport);
    this.warnings = new Warnings(transport);
  }

  /**
   * Connects to a daemon: over HTTPS when `url` is given, else over the first unix socket found
   * (LXD_SOCKET, $LXD_DIR/unix.socket, /var/lib/lxd/unix.socket, the snap's).
   */
  static async connect(opts: LxdConnectOptions = {}): Promise<LxdClient> {
    const { signal, skipGetServer, ...transport } = opts ?? {};
    const socketPath = transport.url ? undefined : (transport.socketPath ?? discoverSocket());
    if (!transport.url && !socketPath) {
      throw new InvalidArgumentError({
        message: 'No LXD unix socket found (LXD_SOCKET, $LXD_DIR, /var/lib/lxd, snap); is the daemon running?',
        argument: 'socketPath',
        backend: BACKEND,
      });
    }
    const client = new LxdClient(new LxdTransport({ ...transport, socketPath }));
    if (!skipGetServer) {
      try {
        await client.refreshServer({ signal });
      } catch (error) {
        client.close();
        throw error;
      }
    }
    return client;
  }

  /** A read-only client for a SimpleStreams image server (images.linuxcontainers.org style). */
  static connectSimpleStreams(url: string, opts: SimpleStreamsOptions = {}): SimpleStreamsClient {
    return new SimpleStreamsClient(url, opts);
  }

  /** Re-reads the server (API extensions, auth state). */
  async refreshServer(opts: CallOptions = {}): Promise<ServerInfo> {
    this.#info = await this.server.get(opts);
    return this.#info;
  }

  /** The server as read at connect time. */
  get serverInfo(): ServerInfo | undefined {
    return this.#info;
  }

  /** Whether the server has an API extension (read at connect time). */
  hasExtension(name: string): boolean {
    return this.#info?.api_extensions?.includes(name) ?? false;
  }

  /** Whether this client is trusted by the server. */
  get isTrusted(): boolean {
    return this.#info?.auth === 'trusted';
  }

  /** The daemon's event stream: lifecycle, operation and logging events. */
  events(opts: EventsOptions = {}): EventStream {
    return new EventStream(this.transport, {
      ...(this.transport.project && !opts.project ? { project: this.transport.project } : {}),
      ...opts,
    });
  }

  /** A client for another project on the same connection settings. */
  withProject(project: string): LxdClient {
    return new LxdClient(this.transport.withProject(project));
  }

  /**
   * Closes the client's connections (and those of the clients withProject made from it, which
   * share them); open streams close when their loops end.
   */
  close(): void {
    this.transport.close();
  }
}
