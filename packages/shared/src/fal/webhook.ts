import { z } from 'zod';
import { falMessage } from './errors';

/**
 * The body fal POSTs to a `fal_webhook` URL when a request ends (fal-contract.md, "Webhooks").
 * `payload` is null, with `payload_error`, when fal could not serialise the output.
 */
export const falWebhookBody = z.object({
  request_id: z.string().min(1),
  gateway_request_id: z.string().optional(),
  status: z.enum(['OK', 'ERROR']),
  payload: z.record(z.string(), z.unknown()).nullable(),
  error: z.string().nullish(),
  payload_error: z.string().nullish(),
});
export type FalWebhookBody = z.infer<typeof falWebhookBody>;

export const FAL_WEBHOOK_HEADERS = {
  requestId: 'x-fal-webhook-request-id',
  userId: 'x-fal-webhook-user-id',
  timestamp: 'x-fal-webhook-timestamp',
  signature: 'x-fal-webhook-signature',
} as const;

/** What a webhook says happened: the output, or fal's error with the payload's detail. */
export function webhookOutcome(
  body: FalWebhookBody,
): { ok: true; output: Record<string, unknown> } | { ok: false; message: string; detail?: unknown } {
  if (body.status === 'OK' && body.payload !== null) return { ok: true, output: body.payload };
  if (body.payload === null) {
    return {
      ok: false,
      message: `fal could not return the output: ${body.payload_error ?? body.error ?? 'no payload'}`,
    };
  }
  const detail = falMessage(body.payload);
  const message = [body.error ?? 'fal reported an error', detail].filter(Boolean).join(': ');
  return { ok: false, message, detail: body.payload };
}
