import { callOptions, path } from '@vmplane/common';
import { checkFingerprint } from '../images/validate.js';
import { checkCertificateName } from '../names.js';
import type { LxdTransport } from '../transport.js';
import type { Certificate, CertificateAddToken, CertificatePut, CertificatesPost } from '../types/api.js';
import type { LxdCallOptions } from './base.js';
import { Collection } from './collection.js';

/** The trust store: clients allowed to talk to the daemon over TLS. */
export class Certificates extends Collection<Certificate, CertificatesPost, CertificatePut> {
  constructor(transport: LxdTransport) {
    super(transport, '/1.0/certificates', 'certificate name', { global: true });
  }

  protected override item(fingerprint: string): string {
    return this.base + path`/${checkFingerprint(fingerprint, 'fingerprint')}`;
  }

  /**
   * Issues a trust token for a new client (`lxc config trust add`): the operation's metadata holds
   * the token; the new client sends it as `password` (LXD 5.0) when it adds itself.
   */
  async createToken(
    name: string,
    opts: LxdCallOptions & { projects?: string[]; restricted?: boolean } = {},
  ): Promise<{ token: string; operationId: string }> {
    checkCertificateName(name);
    const r = await this.transport.request<{
      id: string;
      metadata: CertificateAddToken & { secret?: string; fingerprint?: string; addresses?: string[] };
    }>({
      method: 'POST',
      path: this.base,
      body: { name, type: 'client', token: true, projects: opts?.projects, restricted: opts?.restricted },
      ...callOptions(opts),
      project: null,
    });
    const meta = r.metadata.metadata;
    // The token is base64 of the JSON the CLI prints; build it the same way.
    const token = Buffer.from(
      JSON.stringify({
        client_name: name,
        fingerprint: meta.fingerprint,
        addresses: meta.addresses,
        secret: meta.secret,
        expires_at: '0001-01-01T00:00:00Z',
      }),
    ).toString('base64');
    return { token, operationId: r.metadata.id };
  }

  /** Pending trust tokens are operations; cancelling one revokes it. */
  async revokeToken(operationId: string, opts: LxdCallOptions = {}): Promise<void> {
    await this.call('DELETE', path`/1.0/operations/${operationId}`, opts, { project: null });
  }
}
