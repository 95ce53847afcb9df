import { Registry, collectDefaultMetrics } from 'prom-client';

/** A registry per service: Node's default metrics plus a `service` label on every series. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
