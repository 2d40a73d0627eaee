import { InvalidArgumentError } from '@vmplane/common';
import { BACKEND } from '../errors.js';
import type { Resources, Server as ServerInfo, ServerPut, ServerUntrusted } from '../types/api.js';
import { type LxdCallOptions, Resource, type UpdateOptions } from './base.js';

/** What a client knows about how it reaches the server (Go: GetConnectionInfo). */
export interface ConnectionInfo {
  protocol: 'lxd';
  /** `https://host:port` or `unix://path`. */
  url: string;
  socketPath: string | undefined;
  /** Addresses the server says it listens on. */
  addresses: string[];
  /** The server certificate (PEM) and its fingerprint, when the server shares them. */
  certificate: string;
  certificateFingerprint: string;
  project: string;
}

export interface TrustRequest extends LxdCallOptions {
  /** The trust password (core.trust_password) or, in LXD 5.0, a trust token. */
  password: string;
  /** Name for this client in the trust store. */
  name?: string;
}

export class ServerResource extends Resource {
  /** The server's configuration and environment; an untrusted client gets the public subset. */
  async get(opts: LxdCallOptions = {}): Promise<ServerInfo> {
    return this.read<ServerInfo>('/1.0', opts, {});
  }

  /** The public view any client gets, trusted or not. */
  async untrusted(opts: LxdCallOptions = {}): Promise<ServerUntrusted> {
    return this.call<ServerUntrusted>('GET', '/1.0', opts, { query: { public: '' } });
  }

  async update(put: ServerPut, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PUT', '/1.0', opts, { body: put, etag: opts?.etag });
  }

  /** Merges config keys; `null`-free partial updates are the safe way to change one key. */
  async patch(put: Partial<ServerPut>, opts: UpdateOptions = {}): Promise<void> {
    await this.call('PATCH', '/1.0', opts, { body: put, etag: opts?.etag });
  }

  /** Hardware of the host: CPU, memory, GPUs, NICs, disks, PCI/USB. */
  async resources(opts: LxdCallOptions = {}): Promise<Resources> {
    return this.call('GET', '/1.0/resources', opts, {});
  }

  async connectionInfo(opts: LxdCallOptions = {}): Promise<ConnectionInfo> {
    const server = await this.get(opts);
    const t = this.transport;
    return {
      protocol: 'lxd',
      url: t.socketPath ? `unix://${t.socketPath}` : t.baseUrl.origin,
      socketPath: t.socketPath,
      addresses: server.environment?.addresses ?? [],
      certificate: server.environment?.certificate ?? '',
      certificateFingerprint: server.environment?.certificate_fingerprint ?? '',
      project: server.environment?.project ?? t.project ?? 'default',
    };
  }

  /** Adds this client's TLS certificate to the server's trust store with a password or token. */
  async trust(req: TrustRequest): Promise<void> {
    if (typeof req?.password !== 'string') {
      throw new InvalidArgumentError({ message: 'password must be a string', argument: 'password', backend: BACKEND });
    }
    // The trust store is outside projects.
    await this.call('POST', '/1.0/certificates', req, {
      body: { type: 'client', password: req.password, name: req.name },
      project: null,
    });
  }
}
