import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BREAKER_STATE, breakerState, type BreakerRegistry } from '@aisha/shared';

/** What a worker exports on `/metrics` (names documented in README "Operating"). */
export function workerMetrics(registry: Registry, breakers: () => BreakerRegistry) {
  const breakerOpens = new Counter({
    name: 'fal_breaker_opens_total',
    help: 'Times the circuit breaker of a fal endpoint opened',
    labelNames: ['endpoint'],
    registers: [registry],
  });
  return {
    falCalls: new Counter({
      name: 'fal_calls_total',
      help: 'fal API calls by endpoint, operation (submit, status, result, cancel) and outcome',
      labelNames: ['endpoint', 'operation', 'outcome'],
      registers: [registry],
    }),
    falCallSeconds: new Histogram({
      name: 'fal_call_duration_seconds',
      help: 'Duration of fal API calls',
      labelNames: ['endpoint', 'operation'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      registers: [registry],
    }),
    breakerState: new Gauge({
      name: 'fal_breaker_state',
      help: 'Circuit breaker state by fal endpoint: 0 closed, 1 half-open, 2 open',
      labelNames: ['endpoint'],
      registers: [registry],
      collect() {
        for (const [endpoint, breaker] of breakers().entries()) this.set({ endpoint }, breakerState(breaker));
      },
    }),
    breakerOpens,
    jobs: new Counter({
      name: 'worker_jobs_total',
      help: 'Jobs by queue, job name and outcome',
      labelNames: ['queue', 'job', 'outcome'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'worker_retries_total',
      help: 'Jobs handed back to BullMQ for a retry with backoff, by reason',
      labelNames: ['queue', 'reason'],
      registers: [registry],
    }),
    rateLimitDelays: new Counter({
      name: 'worker_rate_limit_delays_total',
      help: 'Jobs delayed without spending an attempt (fal 429, open breaker, awaiting the webhook of an unanswered submit)',
      labelNames: ['queue', 'reason'],
      registers: [registry],
    }),
    duplicateSubmissions: new Counter({
      name: 'fal_duplicate_submissions_total',
      help: 'Second submissions of one job found at fal (cancelled there)',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    estimatedCost: new Counter({
      name: 'fal_estimated_cost_usd_total',
      help: 'Estimated fal spend in USD by endpoint, counted at submit (estimates: see shared/src/fal/prices.ts)',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    BREAKER_STATE,
  };
}
export type WorkerMetrics = ReturnType<typeof workerMetrics>;
