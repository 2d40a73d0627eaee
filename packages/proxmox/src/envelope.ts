import type * as http from 'node:http';
import { type ApiError, apiErrorFromStatus, parseRetryAfter, redactText, ServerError } from '@vmplane/common';
import { BACKEND } from './errors.js';
import { normaliseBooleans } from './normalise.js';

/** What of an HTTP answer the envelope needs. */
export interface Answer {
  status: number;
  statusMessage: string | undefined;
  headers: http.IncomingHttpHeaders;
}

interface Envelope {
  data?: unknown;
  message?: unknown;
  errors?: unknown;
}

/**
 * PVE's answer: `{ data }` on success, with 1/0 under boolean keys read as booleans. An error status
 * is the ApiError subclass for it, with PVE's message (the body's `message`, else the reason
 * phrase, which is where PVE puts it), the per-parameter `errors` and `Retry-After` in either form.
 * A success whose body is not JSON (a proxy's page, a cut answer) is a ServerError, never data.
 */
export function unwrap(method: string, path: string, res: Answer, text: string): unknown {
  let parsed: unknown;
  let json = true;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = false;
  }
  if (res.status >= 200 && res.status < 300) {
    if (!json || (parsed !== undefined && (parsed === null || typeof parsed !== 'object'))) {
      throw new ServerError({
        status: res.status,
        backend: BACKEND,
        message: `${method} ${path}: the answer is not PVE's JSON envelope: ${redactText(text.slice(0, 120))}`,
        body: text,
        method,
        path,
      });
    }
    return normaliseBooleans((parsed as Envelope | undefined)?.data);
  }
  throw apiError(method, path, res, json ? parsed : undefined, text);
}

function apiError(method: string, path: string, res: Answer, parsed: unknown, text: string): ApiError {
  const envelope = (parsed && typeof parsed === 'object' ? parsed : {}) as Envelope;
  const errors: Record<string, string> = {};
  if (envelope.errors && typeof envelope.errors === 'object') {
    for (const [k, v] of Object.entries(envelope.errors as Record<string, unknown>)) errors[k] = String(v).trim();
  }
  const reason = res.statusMessage?.trim();
  const message =
    (typeof envelope.message === 'string' && envelope.message.trim()) ||
    reason ||
    (parsed === undefined && text.trim() ? redactText(text.trim().slice(0, 200)) : '') ||
    `HTTP ${res.status}`;
  const fieldSummary = Object.entries(errors)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ');
  return apiErrorFromStatus({
    status: res.status,
    backend: BACKEND,
    message: `${method} ${path}: ${message}${fieldSummary ? ` (${fieldSummary})` : ''}`,
    body: parsed ?? text,
    errors,
    method,
    path,
    retryAfter: parseRetryAfter(res.headers['retry-after']),
  });
}

/**
 * PVE's own message of an API error from this client, without the `METHOD path: ` the client
 * puts in front, and without the per-parameter summary.
 */
export function pveMessage(error: ApiError): string {
  const body = error.body as Envelope | undefined;
  if (body && typeof body === 'object' && typeof body.message === 'string') return body.message.trim();
  const prefix = `${error.method} ${error.path}: `;
  const text = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return Object.keys(error.errors).length > 0 ? text.replace(/ \([^()]*\)$/, '') : text;
}
