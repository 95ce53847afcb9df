import { createFalClient, type QueueStatus } from '@fal-ai/client';
import { FalHttpError, FalTransportError } from './errors';
import { parseRetryAfter } from '../retry';
import type { FalEndpointId } from './endpoints';

export interface FalConnection {
  key: string;
  /** Replaces `https://queue.fal.run` (fal-sim in simulator mode). */
  queueUrl: string;
  /** Replaces `https://rest.fal.ai` (storage). */
  restUrl: string;
}

const FAL_QUEUE_ORIGIN = 'https://queue.fal.run';
const FAL_REST_ORIGIN = 'https://rest.fal.ai';

export function rewriteFalUrl(url: string, conn: Pick<FalConnection, 'queueUrl' | 'restUrl'>): string {
  if (url.startsWith(FAL_QUEUE_ORIGIN)) return trimSlash(conn.queueUrl) + url.slice(FAL_QUEUE_ORIGIN.length);
  if (url.startsWith(FAL_REST_ORIGIN)) return trimSlash(conn.restUrl) + url.slice(FAL_REST_ORIGIN.length);
  return url;
}

/**
 * A fetch that fails fast: a 429/5xx answer or a transport failure becomes our own error, which the fal
 * client does not retry (its queue calls retry up to 5 times whatever `retry` says). BullMQ retries instead.
 */
export const failFastFetch: typeof fetch = async (input, init) => {
  let response: Response;
  try {
    response = await fetch(input, init);
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    const reason = e.cause?.code ?? e.cause?.message ?? e.message;
    throw new FalTransportError(`fal unreachable: ${timedOut ? 'timed out' : reason}`, timedOut);
  }
  if (response.status === 429 || response.status >= 500) {
    const text = await response.text().catch(() => '');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    throw new FalHttpError(response.status, body, parseRetryAfter(response.headers.get('retry-after')));
  }
  return response;
};

export interface CallOptions {
  /** Every fal call gets its own deadline: a breaker timeout alone does not stop the request. */
  signal?: AbortSignal;
}

/** The thin, typed face of `@fal-ai/client` our services use. The client itself is unmodified. */
export function createFal(conn: FalConnection) {
  const client = createFalClient({
    credentials: conn.key,
    suppressLocalCredentialsWarning: true,
    requestMiddleware: async (req) => ({ ...req, url: rewriteFalUrl(req.url, conn) }),
    fetch: failFastFetch,
    retry: { maxRetries: 0 },
  });

  return {
    async submit(
      endpoint: FalEndpointId,
      input: Record<string, unknown>,
      options: CallOptions & { webhookUrl?: string } = {},
    ): Promise<{ requestId: string; queuePosition?: number }> {
      // The endpoint types of the client lag behind fal (the pro trainer was removed from them): pass a string.
      const queued = await client.queue.submit(
        endpoint as string,
        {
          input,
          webhookUrl: options.webhookUrl,
          abortSignal: options.signal,
        } as never,
      );
      return { requestId: queued.request_id, queuePosition: queued.queue_position };
    },

    async status(
      endpoint: FalEndpointId,
      requestId: string,
      options: CallOptions = {},
    ): Promise<QueueStatus> {
      return client.queue.status(endpoint, { requestId, logs: true, abortSignal: options.signal });
    },

    async result(endpoint: FalEndpointId, requestId: string, options: CallOptions = {}): Promise<unknown> {
      const result = await client.queue.result(
        endpoint as string,
        { requestId, abortSignal: options.signal } as never,
      );
      return (result as { data: unknown }).data;
    },

    async cancel(endpoint: FalEndpointId, requestId: string, options: CallOptions = {}): Promise<void> {
      await client.queue.cancel(endpoint, { requestId, abortSignal: options.signal });
    },

    /** Uploads to fal storage; the returned URL is what trainers take as `images_data_url` / `data_url`. */
    async upload(data: Blob): Promise<string> {
      return client.storage.upload(data);
    },
  };
}
export type Fal = ReturnType<typeof createFal>;

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
