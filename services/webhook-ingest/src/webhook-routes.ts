import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { falWebhookBody, problem, sendProblem, submissionNonce, type Logger } from '@aisha/shared';
import type { JwksCache } from './jwks-cache';
import type { DeliveryOutcome, IngestMetrics } from './metrics';
import { DeliveryInFlightError, type DeliveryHints, type DeliveryRecorder } from './record-delivery';
import { verifyFalSignature } from './verify-fal-signature';

export interface WebhookRouteDeps {
  jwks: JwksCache;
  recorder: DeliveryRecorder;
  metrics: IngestMetrics;
  log: Logger;
  /** fal's payloads carry image and file URLs, not bytes, but can be large: Express's 100 KB default loses them. */
  bodyLimitBytes: number;
  now: () => number;
}

// The seed guide's callback path names the training type instead of the entity.
const SEED_TRAINING_TYPES: Record<string, DeliveryHints['entity']> = {
  portrait: 'training',
  style: 'training',
  ultra: 'generation',
};

/** `POST /v1/fal/webhook?entity=&id=` and the seed's `POST /api/avatar/status_update?training_type=`. */
export function webhookRoutes(deps: WebhookRouteDeps): Router {
  const router = Router();
  const raw = express.raw({ type: () => true, limit: deps.bodyLimitBytes });

  router.post('/v1/fal/webhook', raw, async (req, res) => {
    const entity =
      req.query.entity === 'training' || req.query.entity === 'generation' ? req.query.entity : undefined;
    await handleDelivery(deps, req, res, {
      entity,
      id: idHint(req.query.id),
      nonce: submissionNonce.safeParse(req.query.nonce).data,
    });
  });
  router.post('/api/avatar/status_update', raw, async (req, res) => {
    const entity = SEED_TRAINING_TYPES[String(req.query.training_type)];
    await handleDelivery(deps, req, res, { entity, id: idHint(req.query.id) });
  });

  // Body-parser errors (too large, aborted) must answer problem+json too.
  router.use((err: { type?: string; status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (err.type === 'entity.too.large') {
      deps.metrics.deliveries.inc({ outcome: 'too_large' });
      return sendProblem(res, problem(413, `webhook body is larger than ${deps.bodyLimitBytes} bytes`));
    }
    if (err.status && err.status < 500)
      return sendProblem(res, problem(err.status, 'could not read the request body'));
    next(err);
  });
  return router;
}

async function handleDelivery(deps: WebhookRouteDeps, req: Request, res: Response, hints: DeliveryHints) {
  const { metrics, log } = deps;
  const outcome = (o: DeliveryOutcome) => metrics.deliveries.inc({ outcome: o });
  const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);

  const timer = metrics.verifySeconds.startTimer();
  const verification = await verifyFalSignature(req.headers, rawBody, deps.jwks, deps.now());
  timer();
  if (!verification.ok) {
    if (verification.reason === 'no_keys') {
      // We cannot verify anything right now; fal will retry the delivery.
      outcome('unavailable');
      log.error({ detail: verification.detail }, 'webhook refused: no JWKS keys');
      return sendProblem(res.set('retry-after', '30'), problem(503, verification.detail));
    }
    outcome(verification.reason === 'stale' ? 'stale' : 'bad_signature');
    log.warn({ reason: verification.reason, hints }, 'webhook refused: %s', verification.detail);
    return sendProblem(res, problem(401, `webhook signature rejected: ${verification.detail}`));
  }

  let parsed;
  try {
    parsed = falWebhookBody.safeParse(JSON.parse(rawBody.toString('utf8')));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) {
    outcome('malformed');
    log.warn({ requestId: verification.requestId }, 'verified webhook is not fal’s shape');
    return sendProblem(
      res,
      problem(400, 'verified webhook body is not fal’s webhook shape (request_id, status, payload)'),
    );
  }
  if (parsed.data.request_id !== verification.requestId) {
    outcome('bad_signature');
    return sendProblem(res, problem(401, 'body request_id differs from the signed X-Fal-Webhook-Request-Id'));
  }

  try {
    const result = await deps.recorder.record(parsed.data, hints);
    outcome(result);
    log.info(
      { requestId: verification.requestId, status: parsed.data.status, result, hints },
      'webhook %s',
      result,
    );
    res.status(200).json({ status: result });
  } catch (err) {
    outcome('unavailable');
    const inFlight = err instanceof DeliveryInFlightError;
    log.error(
      { requestId: verification.requestId, err: (err as Error).message },
      inFlight
        ? 'webhook not recorded: another copy is being recorded'
        : 'webhook not recorded: Redis unavailable',
    );
    sendProblem(
      res.set('retry-after', '10'),
      problem(503, inFlight ? (err as Error).message : 'event queue unavailable; retry later'),
    );
  }
}

function idHint(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= 200 ? value : undefined;
}
