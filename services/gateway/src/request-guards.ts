import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Redis } from 'ioredis';
import { pinoHttp } from 'pino-http';
import { problem, sendProblem, type Logger } from '@aisha/shared';
import { callerOf } from './api-keys';

// Trace ids from proxies and other services (`svc:1234`, UUIDs, W3C-ish ids) fit; anything else is replaced.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A request id on every request (the caller's `X-Request-Id` if sane), echoed back and on every log line. */
export function requestLogging(log: Logger) {
  return pinoHttp({
    logger: log,
    genReqId(req, res) {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('x-request-id', id);
      return id;
    },
    // Probes and scrapes every few seconds would drown the request log.
    autoLogging: { ignore: (req) => /^\/(metrics|healthz|readyz)(\?|$)/.test(req.url ?? '') },
    customLogLevel: (_req, res, err) =>
      err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
      }),
    },
  });
}

/**
 * Per-tenant rate limit, counted in Redis so that every gateway replica shares it. If Redis is down the limit is
 * not enforced (fail open): requests still reach PostgreSQL, and enqueueing already answers 503 on its own.
 */
export function tenantRateLimit(redis: Redis, prefix: string, perMinute: number, log: Logger) {
  return rateLimit({
    ...sharedLimiterOptions(redis, `${prefix}:rate-limit:`, log),
    limit: perMinute,
    keyGenerator: (_req: Request, res: Response) => callerOf(res).tenantId,
    handler: (_req, res, _next, options) => {
      sendProblem(
        res,
        problem(
          429,
          `more than ${options.limit} requests a minute for this tenant; retry after the Retry-After delay`,
        ),
      );
    },
  });
}

/**
 * Counts only the answers that were 401, per client address, before the key is looked up: someone guessing keys
 * is held to `perMinute` guesses, and unknown keys (never cached) cannot flood PostgreSQL. An address over the
 * limit is refused, until the minute is over, for every key but those checked recently. Behind a proxy, set Express's `trust proxy`
 * so that the address is the client's.
 */
export function failedAuthRateLimit(
  redis: Redis,
  prefix: string,
  perMinute: number,
  keyIsKnown: (req: Request) => boolean,
  log: Logger,
) {
  return rateLimit({
    ...sharedLimiterOptions(redis, `${prefix}:auth-failures:`, log),
    limit: perMinute,
    // A key checked recently costs the limiter nothing: the common request makes no Redis round trip here.
    skip: keyIsKnown,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    handler: (_req, res, _next, options) => {
      sendProblem(
        res,
        problem(429, `more than ${options.limit} requests a minute with a wrong API key from this address`),
      );
    },
  });
}

// Both limiters: a one-minute window in Redis shared by every replica, standard headers, failing open.
function sharedLimiterOptions(redis: Redis, keyPrefix: string, log: Logger) {
  return {
    windowMs: 60_000,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    passOnStoreError: true,
    // Its complaints (a store error while Redis is down, once per request) go to our log, not the console.
    logger: {
      error: (err: unknown, message?: string) =>
        log.warn({ err: (err as Error)?.message }, message ?? 'rate limiter error'),
      warn: (err: unknown, message?: string) =>
        log.warn({ err: (err as Error)?.message }, message ?? 'rate limiter warning'),
    },
    store: new RedisStore({
      prefix: keyPrefix,
      sendCommand: (command: string, ...args: string[]) =>
        redis.call(command, ...args) as Promise<RedisReply>,
    }),
  } as const;
}
