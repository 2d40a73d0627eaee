import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificate {
  cert: string;
  key: string;
  /** SHA-256 of the DER, lower-case hex: how LXD names certificates. */
  fingerprint: string;
}

/**
 * A throwaway self-signed certificate (P-384, as `lxc` makes), written under `dir`: a client
 * certificate, or with `san` (e.g. `IP:127.0.0.1`) one a local test server can present.
 */
export async function makeCertificate(dir: string, cn: string, opts: { san?: string } = {}): Promise<TestCertificate> {
  const certPath = join(dir, `${cn}.crt`);
  const keyPath = join(dir, `${cn}.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:secp384r1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '1',
    '-subj',
    `/CN=${cn}`,
    ...(opts.san ? ['-addext', `subjectAltName=${opts.san}`] : []),
  ]);
  const cert = await readFile(certPath, 'utf8');
  const fingerprint = new X509Certificate(cert).fingerprint256.replaceAll(':', '').toLowerCase();
  return { cert, key: await readFile(keyPath, 'utf8'), fingerprint };
}
