import type { Server } from 'node:http';
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
  jwks?: Partial<JwksCacheOptions>;
  /** Injectable clock, for replay tests. */
  now?: () => number;
}

export const DEFAULT_BODY_LIMIT = 5 * 1024 * 1024;

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
  const jwks = new JwksCache(options.jwksUrl, options.jwks, (result) =>
    metrics.jwksRefreshes.inc({ result }),
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
      now: options.now ?? Date.now,
    }),
  );
  app.use((_req, res) => sendProblem(res, problem(404, 'no such route')));

  let server: Server | undefined;
  return {
    app,
    registry,
    async listen(port: number, host = '0.0.0.0'): Promise<number> {
      server = app.listen(port, host);
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
