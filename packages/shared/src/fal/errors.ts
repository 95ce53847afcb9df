import { ApiError, ValidationError } from '@fal-ai/client';

/**
 * Errors our own `fetch` throws instead of letting the fal client see a 429/5xx or a transport failure:
 * the client retries those by itself (ignoring Retry-After), and only BullMQ may retry (fal-contract.md).
 * Neither error carries the original as `cause`: the client walks the cause chain looking for socket codes.
 */
export class FalHttpError extends Error {
  override name = 'FalHttpError';
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`fal answered ${status}${falMessage(body) ? `: ${falMessage(body)}` : ''}`);
  }
}

export class FalTransportError extends Error {
  override name = 'FalTransportError';
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

export type FalErrorKind =
  | 'auth' // 401/403: never retried; the key is wrong
  | 'validation' // 422: never retried; our input is wrong
  | 'rate_limit' // 429: delayed without spending an attempt
  | 'breaker_open' // our breaker refuses calls: delayed without spending an attempt
  | 'transient' // 5xx, network, timeout: retried with backoff
  | 'not_found' // 404: the request id is unknown to fal
  | 'client'; // any other 4xx: never retried

export interface FalFailure {
  kind: FalErrorKind;
  retryable: boolean;
  message: string;
  status?: number;
  retryAfterMs?: number;
  /** For validation errors: the fields fal named, e.g. `["images_data_url"]`. */
  fields?: string[];
}

export function classifyFalError(err: unknown): FalFailure {
  if (err instanceof FalHttpError) {
    if (err.status === 429) {
      return {
        kind: 'rate_limit',
        retryable: true,
        status: 429,
        retryAfterMs: err.retryAfterMs,
        message: err.message,
      };
    }
    return { kind: 'transient', retryable: true, status: err.status, message: err.message };
  }
  if (err instanceof ValidationError) {
    const fields = err.fieldErrors.map((e) => e.loc.filter((p) => p !== 'body').join('.'));
    const detail = err.fieldErrors.map((e) => `${e.loc.filter((p) => p !== 'body').join('.')}: ${e.msg}`);
    return {
      kind: 'validation',
      retryable: false,
      status: 422,
      fields,
      message: `fal rejected the input (422): ${detail.join('; ') || err.message}`,
    };
  }
  if (err instanceof ApiError) {
    const status = err.status;
    if (status === 401 || status === 403) {
      return {
        kind: 'auth',
        retryable: false,
        status,
        message: `fal rejected the key (${status}): check FAL_KEY`,
      };
    }
    if (status === 404)
      return { kind: 'not_found', retryable: false, status, message: `fal: ${err.message}` };
    if (status === 429 || status >= 500) {
      return {
        kind: 'transient',
        retryable: true,
        status,
        message: `fal answered ${status}: ${err.message}`,
      };
    }
    return { kind: 'client', retryable: false, status, message: `fal answered ${status}: ${err.message}` };
  }
  if (err instanceof FalTransportError) {
    return { kind: 'transient', retryable: true, message: err.message };
  }
  const code = (err as { code?: unknown })?.code;
  if (code === 'EOPENBREAKER') {
    return { kind: 'breaker_open', retryable: true, message: 'fal circuit breaker is open' };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'transient', retryable: true, message };
}

/** fal's error bodies carry `detail` (a string or pydantic's list) or `message`. */
export function falMessage(body: unknown): string | undefined {
  if (!body || typeof body !== 'object')
    return typeof body === 'string' && body ? body.slice(0, 500) : undefined;
  const { detail, message, error } = body as { detail?: unknown; message?: unknown; error?: unknown };
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail
      .map(
        (d: { loc?: unknown[]; msg?: string }) =>
          `${(d.loc ?? []).filter((p) => p !== 'body').join('.')}: ${d.msg}`,
      )
      .join('; ');
  }
  if (typeof message === 'string') return message;
  if (typeof error === 'string') return error;
  return undefined;
}
