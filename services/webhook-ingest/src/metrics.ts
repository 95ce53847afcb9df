import { Counter, Histogram, type Registry } from 'prom-client';

export const DELIVERY_OUTCOMES = [
  'accepted',
  'duplicate',
  'bad_signature',
  'stale',
  'malformed',
  'too_large',
  'unavailable',
] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

export function ingestMetrics(registry: Registry) {
  const deliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'fal webhook deliveries by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  // Every outcome exists from the start, so rate() and alerts see zeros instead of gaps.
  for (const outcome of DELIVERY_OUTCOMES) deliveries.inc({ outcome }, 0);
  return {
    deliveries,
    verifySeconds: new Histogram({
      name: 'webhook_signature_verify_seconds',
      help: 'Time to verify a webhook signature (JWKS fetch included when it happens)',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
      registers: [registry],
    }),
    jwksRefreshes: new Counter({
      name: 'webhook_jwks_refreshes_total',
      help: "Fetches of fal's JWKS by result",
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
export type IngestMetrics = ReturnType<typeof ingestMetrics>;
