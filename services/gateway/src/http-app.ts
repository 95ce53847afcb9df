import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { opsRouter, problem, sendProblem, type ReadinessCheck } from '@aisha/shared';
import { ADMIN_PATH, adminBoard } from './admin-board';
import { apiDocs } from './api-docs';
import { apiKeyAuth } from './api-keys';
import type { ApiDeps } from './api/api-deps';
import { avatarRoutes } from './api/avatar-routes';
import { generationRoutes } from './api/generation-routes';
import { trainingRoutes } from './api/training-routes';
import type { GatewayMetrics } from './gateway-metrics';
import { failedAuthRateLimit, requestLogging, tenantRateLimit } from './request-guards';

export const BODY_LIMIT = '1mb';

export interface HttpAppDeps extends ApiDeps {
  registry: Registry;
  metrics: GatewayMetrics;
  readiness: Record<string, ReadinessCheck>;
  boardQueues: Queue[];
  adminKey: string;
  rateLimit: { redis: Redis; prefix: string; perMinute: number; authFailuresPerMinute: number };
}

/** The gateway's HTTP surface: ops endpoints, Bull Board, the API docs and `/v1`; every error is problem+json. */
export function createHttpApp(deps: HttpAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLogging(deps.log), deps.metrics.httpTimer);
  app.use(opsRouter(deps.registry, deps.readiness));
  // Bull Board's page boots with an inline script: it gets helmet without a CSP, behind the admin key.
  app.use(
    ADMIN_PATH,
    helmet({ contentSecurityPolicy: false }),
    ...adminBoard(deps.boardQueues, deps.adminKey),
  );
  app.use(helmet());
  app.use(apiDocs());
  const { redis, prefix, perMinute, authFailuresPerMinute } = deps.rateLimit;
  const auth = apiKeyAuth(deps.pool);
  app.use(
    '/v1',
    failedAuthRateLimit(redis, prefix, authFailuresPerMinute, auth.isKnown, deps.log),
    auth.requireApiKey,
    tenantRateLimit(redis, prefix, perMinute, deps.log),
    express.json({ limit: BODY_LIMIT }),
  );
  app.use(avatarRoutes(deps), trainingRoutes(deps), generationRoutes(deps));
  app.use((_req, res) => sendProblem(res, problem(404, 'no such route')));
  app.use(answerErrors);
  return app;
}

function answerErrors(err: Error & { type?: string }, req: Request, res: Response, _next: NextFunction) {
  if (err.type === 'entity.parse.failed')
    return sendProblem(res, problem(400, `malformed JSON: ${err.message}`));
  if (err.type === 'entity.too.large')
    return sendProblem(res, problem(413, `request body is larger than ${BODY_LIMIT}`));
  if (isRedisUnavailable(err)) {
    res.set('retry-after', '5');
    return sendProblem(res, problem(503, 'the job queue is unavailable; retry shortly'));
  }
  req.log.error({ err: err.message }, 'request failed');
  sendProblem(res, problem(500, 'internal error; the request id is in the X-Request-Id header and the logs'));
}

// ioredis with enableOfflineQueue: false refuses commands at once while disconnected.
function isRedisUnavailable(err: Error): boolean {
  return /Stream isn't writeable|enableOfflineQueue|Connection is closed/.test(err.message);
}
