import {
  ApiError,
  ConnectionError,
  InterruptionError,
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  VmplaneError,
} from '@vmplane/common';
import { CoreError } from '@vmplane/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** An answer the server chose: status, hypeman's `code` and a message safe to show. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  /** go-pve-qemu's text for the same refusal, when it differs from `message`. */
  readonly text: string | undefined;
  constructor(status: number, code: string, message: string, text?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.text = text;
  }
}

export interface ErrorBody {
  status: number;
  code: string;
  message: string;
}

/**
 * One mapping from anything thrown to hypeman's `{code, message}`: core's errors carry their own
 * code and status; a backend's error is the backend's fault (502), or its deadline (504); a
 * refusal made locally (InvalidArgumentError) is the caller's input (400). Anything else is 500
 * with a message that says nothing of the internals.
 */
export function toErrorBody(error: unknown): ErrorBody {
  if (error instanceof HttpError) return { status: error.status, code: error.code, message: error.message };
  const validation = validationMessage(error);
  if (validation) return { status: 400, code: 'invalid_request', message: validation };
  if (error instanceof CoreError) return { status: error.status, code: error.code, message: error.message };
  if (error instanceof InvalidArgumentError) return { status: 400, code: 'invalid_request', message: error.message };
  if (error instanceof TimeoutError) return { status: 504, code: 'backend_timeout', message: error.message };
  if (error instanceof NotFoundError) return { status: 404, code: 'not_found', message: error.message };
  if (error instanceof ApiError || error instanceof ConnectionError || error instanceof InterruptionError)
    return { status: 502, code: 'backend_error', message: error.message };
  if (error instanceof VmplaneError) return { status: 502, code: 'backend_error', message: error.message };
  const fe = error as Partial<FastifyError> | undefined;
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Fastify's own refusals: body too large (413), bad JSON (400), unsupported media type (415).
    const code = fe.statusCode === 413 ? 'payload_too_large' : 'invalid_request';
    return { status: fe.statusCode, code, message: fe.message ?? 'bad request' };
  }
  return { status: 500, code: 'internal_error', message: 'internal error' };
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** A clear message for a schema refusal, naming the field (ajv's own text names only the parent). */
function validationMessage(error: unknown): string | undefined {
  const fe = error as { validation?: AjvError[]; validationContext?: string } | undefined;
  if (!fe || !Array.isArray(fe.validation) || fe.validation.length === 0) return undefined;
  const where = fe.validationContext ?? 'request';
  const parts = fe.validation.slice(0, 3).map((v) => {
    const base = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const params = v.params ?? {};
    if (v.keyword === 'additionalProperties') {
      const field = [base, String(params.additionalProperty)].filter(Boolean).join('.');
      return `${where}.${field}: unknown field`;
    }
    if (v.keyword === 'required') {
      const field = [base, String(params.missingProperty)].filter(Boolean).join('.');
      return `${where}.${field}: is required`;
    }
    return `${where}${base ? `.${base}` : ''}: ${v.message ?? 'is invalid'}`;
  });
  return parts.join('; ');
}

/** The route's flavour decides the shape: go-pve-qemu answered text, hypeman JSON. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const body = toErrorBody(error);
  if (body.status >= 500 && !(error instanceof HttpError)) request.log.error({ err: safeErr(error) }, 'request failed');
  // The SDK retries 409 unless told not to; a conflict here is never transient.
  if (body.status === 409) void reply.header('x-should-retry', 'false');
  const flavour =
    request.routeOptions.config?.access?.flavour ?? (request.url.startsWith('/api/') ? 'gopveqemu' : 'hypeman');
  if (flavour === 'gopveqemu') {
    const text = error instanceof HttpError && error.text !== undefined ? error.text : body.message;
    return reply.code(body.status).type('text/plain; charset=utf-8').send(text);
  }
  return reply
    .code(body.status)
    .type('application/json; charset=utf-8')
    .send({ code: body.code, message: body.message });
}

/** What an error log line may hold: the class and message, never a request or a body. */
export function safeErr(error: unknown): { type: string; message: string } {
  if (error instanceof Error) return { type: error.name, message: error.message };
  return { type: typeof error, message: String(error) };
}
