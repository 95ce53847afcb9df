import { z } from 'zod';
import { falEndpointId } from './fal/endpoints';
import { entity } from './queues';

/**
 * What workers and webhook-ingest tell the gateway's recorder on the `fal-events` queue.
 * Only the recorder writes PostgreSQL; an event is a fact about a fal request, bound to a row by `falRequestId`.
 */
export const EVENT_TYPES = ['submitted', 'progress', 'completed', 'failed', 'cancelled'] as const;
export const eventType = z.enum(EVENT_TYPES);

export const falEvent = z.object({
  type: eventType,
  /** Trusted from workers; from webhooks, a hint taken from the (unsigned) URL, absent when the URL has none. */
  entity: entity.optional(),
  /** Our row id. Trusted from workers; only a hint from webhooks (the webhook URL is not signed). */
  id: z.string().min(1).optional(),
  /** fal's request id: the binding. Absent only on a worker's `failed` event for a job that never reached fal. */
  falRequestId: z.string().min(1).optional(),
  endpoint: falEndpointId.optional(),
  at: z.iso.datetime(),
  source: z.enum(['worker', 'webhook', 'poll', 'sweep']),
  /** The endpoint's raw output, for `completed`; the recorder validates it against the row's endpoint. */
  output: z.unknown().optional(),
  error: z.object({ message: z.string(), detail: z.unknown().optional() }).optional(),
  progress: z
    .object({
      percent: z.number().min(0).max(100).optional(),
      queuePosition: z.number().int().min(0).optional(),
    })
    .optional(),
});
export type FalEvent = z.infer<typeof falEvent>;

/**
 * Completion events are keyed by fal's request id so that a webhook and a poll for the same request collapse
 * into one job. (BullMQ refuses custom ids with exactly one colon; three parts are allowed.) A failure that never
 * reached fal is keyed by our row id.
 */
export function falEventJobId(event: Pick<FalEvent, 'type' | 'falRequestId' | 'id'>): string | undefined {
  if (event.type === 'progress') return undefined;
  if (event.falRequestId) return `evt:${event.type}:${event.falRequestId}`;
  return event.id ? `evt:${event.type}:row-${event.id}` : undefined;
}
