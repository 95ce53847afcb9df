import { z } from 'zod';

/**
 * Configuration is parsed once, at start, from the environment. Each service composes the sections it needs
 * (`loadConfig({ redis: redisEnv, fal: falEnv, ... })`) and never reads `process.env` anywhere else.
 */

export const FAL_SIM_DEFAULT_KEY = 'fal-sim-key';

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export const redisEnv = z
  .object({
    REDIS_URL: z
      .url({ protocol: /^rediss?$/, error: 'must be a redis:// URL' })
      .default('redis://127.0.0.1:6379'),
    QUEUE_PREFIX: z.string().min(1).default('{aisha}'),
  })
  .transform((env) => ({ url: env.REDIS_URL, prefix: env.QUEUE_PREFIX }));

export const databaseEnv = z
  .object({
    DATABASE_URL: z
      .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' })
      .default('postgres://postgres@127.0.0.1:5432/aisha'),
  })
  .transform((env) => ({ url: env.DATABASE_URL }));

/** Without FAL_KEY the system runs in simulator mode: every fal URL points at fal-sim. */
export const falEnv = z
  .object({
    FAL_KEY: z.string().min(1).optional(),
    FAL_SIM_PORT: port(8090),
    // Where fal-sim answers when it is not on this host (docker compose: http://fal-sim:8090).
    FAL_SIM_URL: httpUrl.optional(),
    FAL_QUEUE_URL: httpUrl.optional(),
    FAL_REST_URL: httpUrl.optional(),
    FAL_JWKS_URL: httpUrl.optional(),
  })
  .transform((env) => {
    const sim = env.FAL_SIM_URL?.replace(/\/+$/, '') ?? `http://127.0.0.1:${env.FAL_SIM_PORT}`;
    const simulator = env.FAL_KEY === undefined;
    return {
      mode: simulator ? ('simulator' as const) : ('fal' as const),
      key: env.FAL_KEY ?? FAL_SIM_DEFAULT_KEY,
      queueUrl: env.FAL_QUEUE_URL ?? (simulator ? sim : 'https://queue.fal.run'),
      restUrl: env.FAL_REST_URL ?? (simulator ? sim : 'https://rest.fal.ai'),
      jwksUrl:
        env.FAL_JWKS_URL ??
        (simulator ? `${sim}/.well-known/jwks.json` : 'https://rest.alpha.fal.ai/.well-known/jwks.json'),
    };
  });

export const webhookEnv = z
  .object({ PUBLIC_WEBHOOK_BASE_URL: httpUrl.default('http://127.0.0.1:8081') })
  .transform((env) => ({ publicBaseUrl: env.PUBLIC_WEBHOOK_BASE_URL.replace(/\/+$/, '') }));

const apiKeyList = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+:[^,:\s]{8,}(,[A-Za-z0-9_.-]+:[^,:\s]{8,})*$/, {
    error: 'must be "tenant:key,tenant:key" with keys of 8 or more characters',
  })
  .transform((list) =>
    list.split(',').map((pair) => {
      const [tenant, key] = pair.split(':') as [string, string];
      return { tenant, key };
    }),
  );

/** API keys and the admin key have defaults only in simulator mode; with a real FAL_KEY they are required. */
export const authEnv = z
  .object({
    FAL_KEY: z.string().optional(),
    API_KEYS: apiKeyList.optional(),
    ADMIN_KEY: z.string().min(8, { error: 'must be at least 8 characters' }).optional(),
  })
  .superRefine((env, ctx) => {
    if (env.FAL_KEY === undefined) return;
    if (env.API_KEYS === undefined)
      ctx.addIssue({ code: 'custom', path: ['API_KEYS'], message: 'is required when FAL_KEY is set' });
    if (env.ADMIN_KEY === undefined)
      ctx.addIssue({ code: 'custom', path: ['ADMIN_KEY'], message: 'is required when FAL_KEY is set' });
  })
  .transform((env) => ({
    apiKeys: env.API_KEYS ?? [{ tenant: 'dev', key: 'dev-key' }],
    adminKey: env.ADMIN_KEY ?? 'admin-key',
  }));

export const logEnv = z
  .object({ LOG_LEVEL: logLevel.default('info') })
  .transform((env) => ({ level: env.LOG_LEVEL }));

/** A variable holding JSON, parsed and then validated by `schema` (e.g. `FAL_PRESET_FAST`, `FAL_PRICES`). */
export function jsonVariable<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

/** A section holding one listening port, e.g. `portEnv('GATEWAY_PORT', 8080)`. */
export function portEnv(name: string, fallback: number) {
  return z.object({ [name]: port(fallback) }).transform((env) => env[name] as number);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Sections = Record<string, z.ZodType>;
export type ConfigOf<S extends Sections> = { [K in keyof S]: z.output<S[K]> };

/** Parses every section; throws a ConfigError whose message names the first bad variable. */
export function loadConfig<S extends Sections>(
  sections: S,
  env: NodeJS.ProcessEnv = process.env,
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [section, schema] of Object.entries(sections)) {
    const parsed = schema.safeParse(blankToUndefined(env));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const variable = String(issue.path[0] ?? section);
      const got =
        variable in env && !/KEY/.test(variable)
          ? ` (got ${JSON.stringify(withoutPassword(env[variable]))})`
          : '';
      throw new ConfigError(`${variable}: ${issue.message}${got}`);
    }
    out[section] = parsed.data;
  }
  return out as ConfigOf<S>;
}

/** The entry point of every `main.ts`: a bad variable stops the service with one line naming it. */
export function loadConfigOrExit<S extends Sections>(sections: S, env: NodeJS.ProcessEnv = process.env) {
  try {
    return loadConfig(sections, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`configuration error: ${err.message}\n`);
    process.exit(1);
  }
}

// An exported-but-empty variable (`FAL_KEY=`) means "unset", as in most twelve-factor setups.
function blankToUndefined(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === '' ? undefined : v]));
}

// A bad DATABASE_URL may still carry a password: never echo it.
function withoutPassword(value: string | undefined): string | undefined {
  try {
    const url = new URL(value ?? '');
    if (url.password) url.password = '***';
    return url.password ? url.toString() : value;
  } catch {
    return value;
  }
}
