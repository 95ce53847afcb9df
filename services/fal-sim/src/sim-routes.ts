import express, { Router } from 'express';
import { validationProblem, sendProblem } from '@aisha/shared';
import { faultUpdate, type FaultInjector } from './faults';
import type { RequestRegistry } from './requests';
import type { WebhookDelivery } from './webhook-delivery';

export interface SimCounters {
  calls: { submit: number; status: number; result: number; cancel: number };
}

export function newCounters(): SimCounters {
  return { calls: { submit: 0, status: 0, result: 0, cancel: 0 } };
}

/** `/_sim/*`: what tests and operators use to steer and inspect the simulator. Never faulted, never authenticated. */
export function simRoutes(deps: {
  registry: RequestRegistry;
  faults: FaultInjector;
  webhooks: WebhookDelivery;
  counters: SimCounters;
  reset: () => void;
}): Router {
  const router = Router();

  router.get('/_sim/faults', (_req, res) => {
    res.json(deps.faults.settings);
  });

  router.post('/_sim/faults', express.json(), (req, res) => {
    const parsed = faultUpdate.safeParse(req.body ?? {});
    if (!parsed.success) return sendProblem(res, validationProblem(parsed.error));
    // Only the knobs in the body change; a result whose rates in one group sum above 1 changes nothing.
    const merged = deps.faults.merged(parsed.data);
    if (!merged.success) return sendProblem(res, validationProblem(merged.error));
    res.json(deps.faults.update(parsed.data));
  });

  router.get('/_sim/requests', (_req, res) => {
    res.json(
      deps.registry.list().map((r) => ({
        request_id: r.requestId,
        gateway_request_id: r.gatewayRequestId,
        endpoint: r.endpoint,
        input: r.input,
        webhook_url: r.webhookUrl ?? null,
        status: r.status,
        times_submitted: r.timesSubmitted,
        cancelled: r.cancelled,
        cancel_requests: r.cancelRequests,
        outcome: r.outcome ? (r.outcome.ok ? 'OK' : 'ERROR') : null,
        submitted_at: r.submittedAt,
        completed_at: r.completedAt ?? null,
      })),
    );
  });

  router.get('/_sim/stats', (_req, res) => {
    const requests = deps.registry.list();
    res.json({
      calls: deps.counters.calls,
      accepted: requests.length,
      faults: deps.faults.counts,
      webhooks: deps.webhooks.stats,
    });
  });

  router.post('/_sim/reset', (_req, res) => {
    deps.reset();
    res.status(204).end();
  });

  return router;
}
