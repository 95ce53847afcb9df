import { z } from 'zod';
import { FAL_SIM_DEFAULT_KEY, falEndpointId, jsonVariable } from '@aisha/shared';
import { faultSettings, faultUpdate, type FaultKnob } from './faults';

/** Everything fal-sim can be told at start, from the environment (`main.ts`) or in-process (`startFalSim`). */
export const simOptions = z.object({
  port: z.number().int().min(0).max(65535).default(8090),
  host: z.string().default('127.0.0.1'),
  /** The URL clients reach fal-sim at; answers and file URLs use it. Defaults to http://host:port. */
  publicUrl: z.url().optional(),
  keys: z.array(z.string().min(1)).min(1).default([FAL_SIM_DEFAULT_KEY]),
  userId: z.string().min(1).default('fal-sim-user'),
  /** Time a request waits IN_QUEUE, then runs IN_PROGRESS, by endpoint kind (0 completes at once). */
  queueMs: z.number().int().min(0).default(200),
  trainingMs: z.number().int().min(0).default(5_000),
  generationMs: z.number().int().min(0).default(1_000),
  /** Run time of single endpoints, over the two above: `{"fal-ai/flux-pro-trainer": 20000}`. */
  endpointMs: z.partialRecord(falEndpointId, z.number().int().min(0)).default({}),
  /** First retry delay of a failed webhook delivery; doubles for each of fal's 10 tries (15 s ≈ 2 h in all). */
  webhookRetryBaseMs: z.number().int().min(0).default(15_000),
  webhookTimeoutMs: z.number().int().positive().default(15_000),
  faults: faultSettings.default(faultSettings.parse({})),
  /** The source of every fault draw and reorder delay; tests pass a scripted one to make faults deterministic. */
  random: z.custom<() => number>((value) => typeof value === 'function').optional(),
});
export type SimOptionsInput = z.input<typeof simOptions>;
export type SimOptions = z.output<typeof simOptions>;

const ms = z.coerce.number().int().min(0);

/** The environment variable that sets each fault knob at start; `satisfies` keeps it in step with the schema. */
export const FAULT_ENV_VARIABLES = {
  latencyMs: 'FAL_SIM_LATENCY_MS',
  rate429: 'FAL_SIM_RATE_429',
  retryAfterS: 'FAL_SIM_RETRY_AFTER_S',
  rate5xx: 'FAL_SIM_RATE_5XX',
  rateTimeout: 'FAL_SIM_RATE_TIMEOUT',
  hangMs: 'FAL_SIM_HANG_MS',
  lostAnswerRate: 'FAL_SIM_RATE_LOST_ANSWER',
  runFailureRate: 'FAL_SIM_RATE_RUN_FAILURE',
  webhookDropRate: 'FAL_SIM_WEBHOOK_DROP',
  webhookDuplicateRate: 'FAL_SIM_WEBHOOK_DUPLICATE',
  webhookDelayMs: 'FAL_SIM_WEBHOOK_DELAY_MS',
  webhookReorder: 'FAL_SIM_WEBHOOK_REORDER',
  webhookBadSignatureRate: 'FAL_SIM_WEBHOOK_BAD_SIGNATURE',
} as const satisfies Record<FaultKnob, `FAL_SIM_${string}`>;

const faultKnobEntries = Object.entries(FAULT_ENV_VARIABLES) as Array<[FaultKnob, string]>;

/** A knob's schema read from a string variable: the same checks, no default (the fault schema holds those). */
function fromVariable(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodBoolean) return z.stringbool().optional();
  return z.coerce
    .number()
    .pipe(schema as z.ZodType<number, number>)
    .optional();
}

const faultVariables = Object.fromEntries(
  faultKnobEntries.map(([knob, variable]) => [variable, fromVariable(faultUpdate.shape[knob].unwrap())]),
);

/** The environment of `npm start` / `pnpm --filter fal-sim start`. */
export const falSimEnv = z
  .object({
    FAL_SIM_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
    FAL_SIM_HOST: z.string().default('127.0.0.1'),
    FAL_SIM_PUBLIC_URL: z.url().optional(),
    FAL_SIM_KEYS: z.string().min(1).optional(),
    FAL_SIM_USER_ID: z.string().min(1).default('fal-sim-user'),
    FAL_SIM_QUEUE_MS: ms.default(200),
    FAL_SIM_TRAINING_MS: ms.default(5_000),
    FAL_SIM_GENERATION_MS: ms.default(1_000),
    FAL_SIM_ENDPOINT_MS: jsonVariable(z.partialRecord(falEndpointId, z.number().int().min(0))).optional(),
    FAL_SIM_WEBHOOK_RETRY_BASE_MS: ms.default(15_000),
    FAL_SIM_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
    ...faultVariables,
  })
  .transform((env, ctx): SimOptionsInput => {
    const variables = env as Record<string, unknown>;
    const knobs = Object.fromEntries(
      faultKnobEntries
        .filter(([, variable]) => variables[variable] !== undefined)
        .map(([knob, variable]) => [knob, variables[variable]]),
    );
    // Checked here too, so that a group of rates summing over 1 is named by its variable, not found at start.
    const faults = faultSettings.safeParse(knobs);
    if (!faults.success) {
      for (const issue of faults.error.issues)
        ctx.addIssue({
          code: 'custom',
          path: [FAULT_ENV_VARIABLES[issue.path[0] as FaultKnob]],
          message: issue.message,
        });
      return z.NEVER;
    }
    return {
      port: env.FAL_SIM_PORT,
      host: env.FAL_SIM_HOST,
      publicUrl: env.FAL_SIM_PUBLIC_URL,
      keys: env.FAL_SIM_KEYS ? env.FAL_SIM_KEYS.split(',').map((k) => k.trim()) : undefined,
      userId: env.FAL_SIM_USER_ID,
      queueMs: env.FAL_SIM_QUEUE_MS,
      trainingMs: env.FAL_SIM_TRAINING_MS,
      generationMs: env.FAL_SIM_GENERATION_MS,
      endpointMs: env.FAL_SIM_ENDPOINT_MS,
      webhookRetryBaseMs: env.FAL_SIM_WEBHOOK_RETRY_BASE_MS,
      webhookTimeoutMs: env.FAL_SIM_WEBHOOK_TIMEOUT_MS,
      faults: faults.data,
    };
  });
