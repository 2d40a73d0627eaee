import type * as http from 'node:http';
import {
  apiErrorFromStatus,
  ConnectionError,
  certificateError,
  type HttpResponse,
  parseRetryAfter,
  redactText,
  ServerError,
  VmplaneError,
} from '@vmplane/common';
import { BACKEND } from './errors.js';

/** LXD's response envelope, as it arrives. */
export interface Envelope {
  type?: string;
  status_code?: number;
  operation?: string;
  error_code?: number;
  error?: string;
  metadata?: unknown;
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The operation an async answer announced: LXD names it in `Location` before the body, so the id
 * is known even when the call ends while the body is still on its way.
 */
export function operationIdOf(headers: http.IncomingHttpHeaders): string | undefined {
  const location = headerValue(headers.location);
  const m = location ? /^\/1\.0\/operations\/([^/?#]+)$/.exec(location) : null;
  return m?.[1] ? decodeURIComponent(m[1]) : undefined;
}

export async function readEnvelope(res: HttpResponse): Promise<Envelope> {
  const text = await res.text();
  try {
    return JSON.parse(text) as Envelope;
  } catch {
    throw new ServerError({
      status: res.status,
      message: `LXD answered something that is not JSON: ${redactText(text.slice(0, 120))}`,
      backend: BACKEND,
      body: text,
    });
  }
}

/** The typed error of an error answer, its body read under the call's deadline. */
export async function errorFrom(res: HttpResponse, method: string, path: string): Promise<Error> {
  let text: string | undefined;
  try {
    text = await res.text();
  } catch (error) {
    // The deadline fired while the error body was on its way: that is the call's outcome.
    if (error instanceof VmplaneError && !(error instanceof ConnectionError)) throw error;
  }
  return errorFromText(res.status, text, res.headers, method, path);
}

/** Reads an answer that is not the upgrade asked for into the typed error its envelope names. */
export function errorFromIncoming(res: http.IncomingMessage, method: string, path: string): Promise<Error> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', () => {});
    res.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve(errorFromText(res.statusCode ?? 500, text, res.headers, method, path));
    });
  });
}

/** The typed error an LXD error answer names: its envelope's message and code, or the bare status. */
export function errorFromText(
  status: number,
  text: string | undefined,
  headers: http.IncomingHttpHeaders,
  method: string,
  path: string,
): Error {
  let envelope: Envelope = {};
  let body: unknown = text;
  try {
    envelope = JSON.parse(text ?? '') as Envelope;
    body = envelope;
  } catch {}
  return apiErrorFromStatus({
    status,
    code: envelope.error_code,
    message: envelope.error ? redactText(envelope.error) : `${method} ${redactText(path)}: HTTP ${status}`,
    body,
    backend: BACKEND,
    method,
    path,
    requestId: headerValue(headers['x-request-id']),
    retryAfter: parseRetryAfter(headers['retry-after']),
  });
}

/**
 * A failed connection of a websocket or an upgrade. Typed errors (a pin mismatch) pass as they
 * are; a refused certificate is a TlsVerificationError; refused or missing sockets never sent.
 */
export function socketError(what: string, error: NodeJS.ErrnoException, mayHaveSent: boolean): Error {
  if (error instanceof VmplaneError) return error;
  return (
    certificateError(error, what, BACKEND) ??
    new ConnectionError({
      message: `${what}: ${redactText(error.message)}`,
      backend: BACKEND,
      sent: mayHaveSent && !['ECONNREFUSED', 'ENOENT'].includes(error.code ?? ''),
      syscallCode: error.code,
      cause: error,
    })
  );
}
