import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { QUEUES, createMetricsRegistry, opsRouter, problem, sendProblem, type Logger } from '@aisha/shared';
import { JwksCache, type JwksCacheOptions } from './jwks-cache';
import { ingestMetrics } from './metrics';
import { DeliveryRecorder } from './record-delivery';
import { webhookRoutes } from './webhook-routes';

export { verifyFalSignature, MAX_SKEW_S } from './verify-fal-signature';
export { JwksCache } from './jwks-cache';

export interface IngestOptions {
  redisUrl: string;
  prefix: string;
  jwksUrl: string;
  log: Logger;
  bodyLimitBytes?: number;
  /** How long one delivery may take to arrive in full (Node's `requestTimeout`); see `listen`. */
  requestTimeoutMs?: number;
  jwks?: Partial<JwksCacheOptions>;
  /** Injectable clock, for replay and JWKS-age tests. */
  now?: () => number;
}

export const DEFAULT_BODY_LIMIT = 5 * 1024 * 1024;
/** fal abandons a delivery after 15 s (and retries it later): nothing is gained by waiting longer for its bytes. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

export interface WebhookIngest {
  app: Express;
  registry: Registry;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

/** Builds webhook-ingest: its Express app, and what must be closed on shutdown. */
export function createWebhookIngest(options: IngestOptions): WebhookIngest {
  const registry = createMetricsRegistry('webhook-ingest');
  const metrics = ingestMetrics(registry);
  // Fail fast instead of queueing commands while Redis is down: fal gets a 503 and retries later.
  const redis = new Redis(options.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', (err) => options.log.warn({ err: err.message }, 'redis connection error'));
  const events = new Queue(QUEUES.falEvents, { connection: redis, prefix: options.prefix });
  events.on('error', () => undefined); // already logged by the connection's handler
  const now = options.now ?? Date.now;
  const jwks = new JwksCache(
    options.jwksUrl,
    options.jwks,
    (result) => metrics.jwksRefreshes.inc({ result }),
    now,
  );
  const recorder = new DeliveryRecorder(redis, events, options.prefix);

  const app = express();
  app.disable('x-powered-by');
  app.use(
    opsRouter(registry, {
      redis: async () => ((await redis.ping()) === 'PONG' ? true : 'no PONG'),
      jwks: async () => ((await jwks.current()).length > 0 ? true : (jwks.status().error ?? 'no keys')),
    }),
  );
  app.use(
    webhookRoutes({
      jwks,
      recorder,
      metrics,
      log: options.log,
      bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
      now,
    }),
  );
  app.use((_req, res) => sendProblem(res, problem(404, 'no such route')));

  let server: Server | undefined;
  return {
    app,
    registry,
    async listen(port: number, host = '0.0.0.0'): Promise<number> {
      // Node's defaults (300 s per request, checked every 30 s) would let a slow or stalled sender hold a socket long
      // after fal has given up on the delivery (15 s). So: a request must arrive in full within fal's timeout, its
      // headers within a third of it, and the check runs every second so the limits are met, not merely approached.
      const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
      server = createServer(
        {
          requestTimeout,
          headersTimeout: Math.ceil(requestTimeout / 3),
          connectionsCheckingInterval: Math.min(1_000, requestTimeout),
        },
        app,
      );
      server.listen(port, host);
      await new Promise<void>((resolve, reject) => server!.once('listening', resolve).once('error', reject));
      return (server.address() as AddressInfo).port;
    },
    /** Stops accepting, lets in-flight deliveries finish, then closes Redis. */
    async close(): Promise<void> {
      if (server) {
        const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
        server.closeIdleConnections();
        await closed;
      }
      await events.close().catch(() => undefined);
      redis.disconnect();
    },
  };
}
