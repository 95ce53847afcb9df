import { z } from 'zod';
import { falEnv, logEnv, pricesEnv, redisEnv, webhookEnv } from '@aisha/shared';

const ms = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Settings every worker shares; each worker adds its port and what its jobs need. */
export const workerSettingsEnv = z
  .object({
    WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(20),
    // BullMQ hands a job to another worker when its lock is not renewed for this long (a crashed worker).
    WORKER_LOCK_MS: ms(30_000),
    WORKER_STALLED_INTERVAL_MS: ms(30_000),
    FAL_CALL_TIMEOUT_MS: ms(14_000),
    FAL_BREAKER_RESET_MS: ms(30_000),
    WORKER_SHUTDOWN_GRACE_MS: ms(8_000),
    // See adoptUnansweredSubmit: a crash or timeout mid-submit waits this long for fal's webhook before resubmitting.
    FAL_ADOPT_WINDOW_MS: ms(60_000),
  })
  .transform((env) => ({
    concurrency: env.WORKER_CONCURRENCY,
    lockDurationMs: env.WORKER_LOCK_MS,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    falCallTimeoutMs: env.FAL_CALL_TIMEOUT_MS,
    breakerResetMs: env.FAL_BREAKER_RESET_MS,
    shutdownGraceMs: env.WORKER_SHUTDOWN_GRACE_MS,
    adoptWindowMs: env.FAL_ADOPT_WINDOW_MS,
  }));

export const workerSections = {
  redis: redisEnv,
  fal: falEnv,
  webhook: webhookEnv,
  log: logEnv,
  worker: workerSettingsEnv,
  prices: pricesEnv,
};
export type WorkerRuntimeConfig = {
  [K in keyof typeof workerSections]: z.output<(typeof workerSections)[K]>;
} & { port: number };
