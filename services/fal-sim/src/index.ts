import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Response } from 'express';
import { createLogger, opsRouter, problem, sendProblem, type Logger } from '@aisha/shared';
import { falErrorHandler } from './fal-errors';
import { FaultInjector, type FaultSettings, type FaultUpdate } from './faults';
import { FileStore } from './file-store';
import { simOptions, type SimOptionsInput } from './options';
import { queueRoutes } from './queue-routes';
import { RequestRegistry, type SimRequest } from './requests';
import { createWebhookSigner } from './signing';
import { simMetrics } from './sim-metrics';
import { newCounters, simRoutes, type SimCounters } from './sim-routes';
import { storageRoutes } from './storage-routes';
import { WebhookDelivery } from './webhook-delivery';

export { simOptions, falSimEnv, FAULT_ENV_VARIABLES, type SimOptionsInput } from './options';
export {
  faultSettings,
  faultUpdate,
  EXCLUSIVE_FAULT_GROUPS,
  FAULT_COUNTERS,
  type FaultSettings,
  type FaultUpdate,
  type FaultCounter,
} from './faults';
export { signedMessage } from './signing';
export type { SimRequest } from './requests';

export interface FalSim {
  /** Base URL; also the queue URL, the REST (storage) URL and the origin of file URLs. */
  url: string;
  queueUrl: string;
  restUrl: string;
  jwksUrl: string;
  /** A key fal-sim accepts. */
  key: string;
  /** The fal connection a service needs (`createFal(sim.connection)`). */
  connection: { key: string; queueUrl: string; restUrl: string };
  /** Merges `patch` into the fault settings; throws a ZodError, changing nothing, on an invalid result. */
  setFaults(patch: FaultUpdate): FaultSettings;
  /** Signs any body as fal signs a webhook (for tests of odd payloads: `payload_error`, very large outputs). */
  signWebhook(requestId: string, rawBody: Buffer, options?: { now?: number }): Record<string, string>;
  requests(): SimRequest[];
  /** What `GET /_sim/stats` answers: calls by kind, accepted submissions, faults injected, webhook deliveries. */
  stats(): {
    calls: SimCounters['calls'];
    accepted: number;
    faults: FaultInjector['counts'];
    webhooks: WebhookDelivery['stats'];
  };
  reset(): void;
  stop(): Promise<void>;
}

/** Starts fal-sim in this process (port 0 picks a free port). */
export async function startFalSim(input: SimOptionsInput = {}, log?: Logger): Promise<FalSim> {
  const options = simOptions.parse({ port: 0, ...input });
  const logger = log ?? createLogger('fal-sim', 'silent');
  let baseUrl = options.publicUrl?.replace(/\/+$/, '') ?? '';
  const initialFaults = options.faults;

  const faults = new FaultInjector({ ...initialFaults }, options.random);
  const files = new FileStore(() => baseUrl);
  const signer = createWebhookSigner(options.userId);
  const webhooks = new WebhookDelivery(signer, faults, logger, () => ({
    retryBaseMs: options.webhookRetryBaseMs,
    timeoutMs: options.webhookTimeoutMs,
  }));
  const registry = new RequestRegistry(files, faults, webhooks, () => options);
  const counters = newCounters();
  const hanging = new Set<Response>();
  const reset = () => {
    registry.reset();
    webhooks.stop();
    webhooks.resetStats();
    files.clear();
    faults.reset({ ...initialFaults });
    Object.assign(counters, newCounters());
  };

  const metrics = simMetrics({ registry, faults, webhooks, counters });

  const app = express();
  app.disable('x-powered-by');
  app.use(opsRouter(metrics));
  app.get('/.well-known/jwks.json', (_req, res) => {
    res.set('cache-control', 'public, max-age=86400').json(signer.jwks);
  });
  app.use(simRoutes({ registry, faults, webhooks, counters, reset }));
  app.use(storageRoutes(files, () => options.keys));
  app.use(
    queueRoutes({ registry, faults, counters, keys: () => options.keys, baseUrl: () => baseUrl, hanging }),
  );
  app.use((_req, res) => sendProblem(res, problem(404, 'no such fal-sim route')));
  app.use(falErrorHandler);

  const server: Server = app.listen(options.port, options.host);
  // Idle keep-alive sockets stay open until the client closes them: Node's 5 s idle close races a client reusing
  // the socket (a reset no fault asked for, seen on loaded machines). stop() closes them all.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  if (!baseUrl) baseUrl = `http://${options.host}:${port}`;
  logger.info({ url: baseUrl }, 'fal-sim listening');

  return {
    url: baseUrl,
    queueUrl: baseUrl,
    restUrl: baseUrl,
    jwksUrl: `${baseUrl}/.well-known/jwks.json`,
    key: options.keys[0]!,
    connection: { key: options.keys[0]!, queueUrl: baseUrl, restUrl: baseUrl },
    setFaults: (patch) => faults.update(patch),
    signWebhook: (requestId, rawBody, opts) => signer.headersFor(requestId, rawBody, opts),
    requests: () => registry.list(),
    stats: () => ({
      calls: counters.calls,
      accepted: registry.list().length,
      faults: faults.counts,
      webhooks: webhooks.stats,
    }),
    reset,
    async stop() {
      registry.stop();
      webhooks.stop();
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
