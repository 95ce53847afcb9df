import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { FAL_ENDPOINTS, falAppPath, type FalEndpointId } from '@aisha/shared';
import type { FaultInjector } from './faults';
import { pydanticDetail, sendFalError } from './fal-errors';
import type { RequestRegistry, SimRequest } from './requests';
import type { SimCounters } from './sim-routes';

export interface QueueDeps {
  registry: RequestRegistry;
  faults: FaultInjector;
  counters: SimCounters;
  keys: () => string[];
  baseUrl: () => string;
  /** Responses left hanging by the timeout fault, closed when the simulator stops. */
  hanging: Set<Response>;
}

/** fal's queue API: submit, status, result, cancel, behind `Authorization: Key …` and the fault injector. */
export function queueRoutes(deps: QueueDeps): Router {
  const router = Router();
  const guard = [requireFalKey(deps.keys), injectFaults(deps)];
  const count = (call: keyof SimCounters['calls']) => (_req: Request, _res: Response, next: NextFunction) => {
    deps.counters.calls[call] += 1;
    next();
  };

  router.post(
    ['/:owner/:alias', '/:owner/:alias/*rest'],
    count('submit'),
    express.json({ limit: '10mb' }),
    ...guard,
    (req, res) => {
      const endpoint = endpointOf(req);
      if (!endpoint) return sendFalError(res, 404, `Application '${req.path.slice(1)}' not found`);
      const parsed = FAL_ENDPOINTS[endpoint].input.safeParse(req.body ?? {});
      if (!parsed.success) return sendFalError(res, 422, pydanticDetail(parsed.error));
      const webhook = typeof req.query.fal_webhook === 'string' ? req.query.fal_webhook : undefined;
      if (webhook !== undefined && !URL.canParse(webhook)) {
        return sendFalError(res, 422, [
          { loc: ['query', 'fal_webhook'], msg: 'invalid URL', type: 'value_error' },
        ]);
      }
      const request = deps.registry.submit(endpoint, parsed.data as Record<string, unknown>, webhook);
      res.setHeader('x-fal-request-id', request.requestId);
      res.json({
        ...urlsOf(deps.baseUrl(), request),
        gateway_request_id: request.gatewayRequestId,
        status: 'IN_QUEUE',
        queue_position: deps.registry.queuePosition(request),
      });
    },
  );

  router.get('/:owner/:alias/requests/:id/status', count('status'), ...guard, (req, res) => {
    const request = findOr404(deps, req, res);
    if (!request) return;
    const logs = req.query.logs === '1' ? request.logs : [];
    const body = { ...urlsOf(deps.baseUrl(), request), status: request.status };
    if (request.status === 'IN_QUEUE') {
      res.status(202).json({ ...body, queue_position: deps.registry.queuePosition(request) });
    } else if (request.status === 'IN_PROGRESS') {
      res.status(202).json({ ...body, logs });
    } else {
      res.status(200).json({ ...body, logs, metrics: { inference_time: inferenceSeconds(request) } });
    }
  });

  router.get('/:owner/:alias/requests/:id', count('result'), ...guard, (req, res) => {
    const request = findOr404(deps, req, res);
    if (!request) return;
    if (!request.outcome) return sendFalError(res, 400, 'Request is still in progress');
    res.setHeader('x-fal-request-id', request.requestId);
    if (request.outcome.ok) return void res.json(request.outcome.output);
    res.status(request.outcome.statusCode).json(request.outcome.body);
  });

  // fal answers 202 CANCELLATION_REQUESTED, or 400 ALREADY_COMPLETED (codes *unverified*, see fal-contract.md).
  router.put('/:owner/:alias/requests/:id/cancel', count('cancel'), ...guard, (req, res) => {
    const request = findOr404(deps, req, res);
    if (!request) return;
    const result = deps.registry.cancel(request);
    if (result === 'cancelled') res.status(202).json({ status: 'CANCELLATION_REQUESTED' });
    else res.status(400).json({ status: 'ALREADY_COMPLETED', detail: 'Request is already completed' });
  });

  return router;
}

export function requireFalKey(keys: () => string[]) {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const key = header.startsWith('Key ') ? header.slice(4).trim() : undefined;
    if (key && keys().includes(key)) return next();
    sendFalError(res, 401, 'Authentication is required to access this application: invalid or missing key');
  };
}

function injectFaults(deps: QueueDeps) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const { latencyMs, retryAfterS, hangMs } = deps.faults.settings;
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const fault = deps.faults.forQueueCall();
    if (fault === '429') {
      res.setHeader('retry-after', String(retryAfterS));
      return sendFalError(res, 429, 'Rate limit exceeded: too many concurrent requests');
    }
    if (fault === '5xx') return sendFalError(res, 503, 'Service temporarily unavailable');
    if (fault === 'hang') {
      deps.hanging.add(res);
      setTimeout(() => {
        deps.hanging.delete(res);
        res.destroy();
      }, hangMs).unref();
      return;
    }
    if (fault === 'lost') {
      // The handler still runs (a submit is accepted and billed), but its answer never reaches the client:
      // the case fal-contract.md warns about, where a retried submit creates a second request.
      res.json = (() => {
        req.socket.destroy();
        return res;
      }) as Response['json'];
    }
    next();
  };
}

function endpointOf(req: Request): FalEndpointId | undefined {
  const rest = (req.params as { rest?: string[] }).rest ?? [];
  const id = [req.params.owner, req.params.alias, ...rest].join('/');
  return id in FAL_ENDPOINTS ? (id as FalEndpointId) : undefined;
}

function findOr404(deps: QueueDeps, req: Request, res: Response): SimRequest | undefined {
  const request = deps.registry.find(`${req.params.owner}/${req.params.alias}`, String(req.params.id));
  if (!request) sendFalError(res, 404, `Request ${String(req.params.id)} not found`);
  return request;
}

function urlsOf(baseUrl: string, request: SimRequest) {
  const base = `${baseUrl}/${falAppPath(request.endpoint)}/requests/${request.requestId}`;
  return {
    request_id: request.requestId,
    response_url: base,
    status_url: `${base}/status`,
    cancel_url: `${base}/cancel`,
  };
}

function inferenceSeconds(request: SimRequest): number | null {
  if (!request.startedAt || !request.completedAt) return null;
  return (Date.parse(request.completedAt) - Date.parse(request.startedAt)) / 1000;
}
