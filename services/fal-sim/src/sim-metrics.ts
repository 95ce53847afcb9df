import { Gauge, type Registry } from 'prom-client';
import { createMetricsRegistry } from '@aisha/shared';
import type { FaultInjector } from './faults';
import type { RequestRegistry } from './requests';
import type { SimCounters } from './sim-routes';
import type { WebhookDelivery } from './webhook-delivery';

/**
 * fal-sim's `/metrics`: what it holds and what it injected, read from its own state at scrape time (so a
 * `/_sim/reset` resets them too).
 */
export function simMetrics(deps: {
  registry: RequestRegistry;
  faults: FaultInjector;
  webhooks: WebhookDelivery;
  counters: SimCounters;
}): Registry {
  const metrics = createMetricsRegistry('fal-sim');
  new Gauge({
    name: 'fal_sim_requests',
    help: 'Requests fal-sim holds, by endpoint and status',
    labelNames: ['endpoint', 'status'],
    registers: [metrics],
    collect() {
      this.reset();
      for (const r of deps.registry.list()) this.inc({ endpoint: r.endpoint, status: r.status });
    },
  });
  new Gauge({
    name: 'fal_sim_queue_calls',
    help: 'Queue API calls received since start or reset, by call',
    labelNames: ['call'],
    registers: [metrics],
    collect() {
      for (const [call, count] of Object.entries(deps.counters.calls)) this.set({ call }, count);
    },
  });
  new Gauge({
    name: 'fal_sim_faults_injected',
    help: 'Faults injected since start or reset, by kind',
    labelNames: ['kind'],
    registers: [metrics],
    collect() {
      for (const [kind, count] of Object.entries(deps.faults.counts)) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'fal_sim_webhook_deliveries',
    help: 'Webhook delivery attempts since start or reset, by outcome',
    labelNames: ['outcome'],
    registers: [metrics],
    collect() {
      for (const [outcome, count] of Object.entries(deps.webhooks.stats)) this.set({ outcome }, count);
    },
  });
  return metrics;
}
