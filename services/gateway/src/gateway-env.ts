import { z } from 'zod';
import {
  authEnv,
  databaseEnv,
  falEndpointId,
  type FalEndpointId,
  falEnv,
  jsonVariable,
  logEnv,
  portEnv,
  redisEnv,
  trainingEnv,
} from '@aisha/shared';

const seconds = (fallback: number) => z.coerce.number().positive().default(fallback);

/** How often the sweep runs, when it polls fal for a late webhook, and when it gives up on a row. */
export const sweepEnv = z
  .object({
    SWEEP_EVERY_S: seconds(30),
    // Also the cadence of a running training's progress: each poll reports fal's queue position or percentage.
    // fal's status calls cost nothing, and a user waiting on a 20-minute training wants to see it move.
    POLL_TRAINING_AFTER_S: seconds(60),
    POLL_GENERATION_AFTER_S: seconds(60),
    // Endpoints differ in how long a run takes (a pro training outlasts a portrait one): per-endpoint overrides,
    // e.g. {"fal-ai/flux-pro-trainer": 1800}.
    POLL_AFTER_S: jsonVariable(z.partialRecord(falEndpointId, z.number().positive())).default({}),
    TRAINING_DEADLINE_S: seconds(3 * 3600),
    GENERATION_DEADLINE_S: seconds(15 * 60),
    ORPHAN_AFTER_S: seconds(10 * 60),
  })
  .transform((env) => ({
    everyMs: env.SWEEP_EVERY_S * 1000,
    pollAfterMs: {
      training: env.POLL_TRAINING_AFTER_S * 1000,
      generation: env.POLL_GENERATION_AFTER_S * 1000,
      byEndpoint: Object.fromEntries(
        Object.entries(env.POLL_AFTER_S).map(([endpoint, s]) => [endpoint, s * 1000]),
      ) as Partial<Record<FalEndpointId, number>>,
    },
    deadlineMs: { training: env.TRAINING_DEADLINE_S * 1000, generation: env.GENERATION_DEADLINE_S * 1000 },
    orphanAfterMs: env.ORPHAN_AFTER_S * 1000,
  }));

export const limitsEnv = z
  .object({
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(600),
    // Requests answered 401 per client address per minute before it is refused outright (key guessing).
    AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().positive().default(60),
    // fal-events applied at once; each holds a PostgreSQL connection (the pool has 20) for a short transaction.
    RECORDER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(16),
  })
  .transform((env) => ({
    perMinute: env.RATE_LIMIT_PER_MINUTE,
    authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
    recorderConcurrency: env.RECORDER_CONCURRENCY,
  }));

export const gatewaySections = {
  limits: limitsEnv,
  redis: redisEnv,
  database: databaseEnv,
  fal: falEnv,
  auth: authEnv,
  log: logEnv,
  training: trainingEnv,
  sweep: sweepEnv,
  port: portEnv('GATEWAY_PORT', 8080),
};
export type GatewayConfig = { [K in keyof typeof gatewaySections]: z.output<(typeof gatewaySections)[K]> };
