import { isIP } from 'node:net';
import { generate as generateCertificate } from 'selfsigned';

/** A self-signed certificate for the simulator's host, made in-process (no `openssl` binary needed). */
export async function makeCert(host: string): Promise<{ key: string; cert: string }> {
  const altNames: Array<{ type: 2; value: string } | { type: 7; ip: string }> = [
    isIP(host) ? { type: 7, ip: host } : { type: 2, value: host },
  ];
  if (host !== 'localhost') altNames.push({ type: 2, value: 'localhost' });
  if (host !== '127.0.0.1') altNames.push({ type: 7, ip: '127.0.0.1' });
  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate.getTime() + 3650 * 86_400_000);
  const pems = await generateCertificate(
    [
      { name: 'commonName', value: 'pve-sim' },
      { name: 'organizationName', value: 'vmplane proxmox-sim' },
    ],
    {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames },
      ],
    },
  );
  return { key: pems.private, cert: pems.cert };
}
