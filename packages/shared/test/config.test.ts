import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  ConfigError,
  authEnv,
  databaseEnv,
  falEnv,
  loadConfig,
  logEnv,
  portEnv,
  redisEnv,
  trainingEnv,
  webhookEnv,
} from '@aisha/shared';

const sections = { redis: redisEnv, fal: falEnv, webhook: webhookEnv, auth: authEnv, log: logEnv };

describe('configuration', () => {
  it('runs in simulator mode with working defaults when FAL_KEY is unset', () => {
    const config = loadConfig({ ...sections, port: portEnv('GATEWAY_PORT', 8080) }, {});
    expect(config.fal.mode).toBe('simulator');
    expect(config.fal.queueUrl).toBe('http://127.0.0.1:8090');
    expect(config.fal.jwksUrl).toBe('http://127.0.0.1:8090/.well-known/jwks.json');
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: '{aisha}' });
    expect(config.auth.apiKeys).toEqual([{ tenant: 'dev', key: 'dev-key' }]);
    expect(config.port).toBe(8080);
  });

  it('points every fal URL at FAL_SIM_URL when fal-sim runs on another host (docker compose)', () => {
    const { fal } = loadConfig({ fal: falEnv }, { FAL_SIM_URL: 'http://fal-sim:8090/' });
    expect([fal.queueUrl, fal.restUrl, fal.jwksUrl]).toEqual([
      'http://fal-sim:8090',
      'http://fal-sim:8090',
      'http://fal-sim:8090/.well-known/jwks.json',
    ]);
    // With a real key, FAL_SIM_URL is ignored.
    expect(
      loadConfig({ fal: falEnv }, { FAL_KEY: 'k', FAL_SIM_URL: 'http://fal-sim:8090' }).fal.queueUrl,
    ).toBe('https://queue.fal.run');
  });

  it("talks to fal's real hosts when FAL_KEY is set", () => {
    const config = loadConfig(sections, {
      FAL_KEY: 'k-123',
      API_KEYS: 'acme:acme-secret-1,globex:globex-secret',
      ADMIN_KEY: 'admin-secret',
    });
    expect(config.fal).toMatchObject({
      mode: 'fal',
      queueUrl: 'https://queue.fal.run',
      restUrl: 'https://rest.fal.ai',
    });
    expect(config.fal.jwksUrl).toBe('https://rest.alpha.fal.ai/.well-known/jwks.json');
    expect(config.auth.apiKeys.map((k) => k.tenant)).toEqual(['acme', 'globex']);
  });

  it('requires API keys and an admin key outside simulator mode', () => {
    expect(() => loadConfig({ auth: authEnv }, { FAL_KEY: 'k' })).toThrow(
      /^API_KEYS: is required when FAL_KEY is set/,
    );
  });

  it('names the bad variable and its value', () => {
    expect(() => loadConfig(sections, { REDIS_URL: 'notaurl' })).toThrow(ConfigError);
    expect(() => loadConfig(sections, { REDIS_URL: 'notaurl' })).toThrow(/^REDIS_URL: .*"notaurl"/);
    expect(() => loadConfig({ port: portEnv('GATEWAY_PORT', 8080) }, { GATEWAY_PORT: '99999' })).toThrow(
      /^GATEWAY_PORT/,
    );
  });

  it('never echoes the value of a secret in its error', () => {
    expect(() => loadConfig({ db: databaseEnv }, { DATABASE_URL: 'mysql://app:s3cret@db/aisha' })).toThrow(
      /^DATABASE_URL: .*mysql:\/\/app:\*\*\*@db\/aisha/,
    );
    expect(() =>
      loadConfig({ db: databaseEnv }, { DATABASE_URL: 'mysql://app:s3cret@db/aisha' }),
    ).not.toThrow(/s3cret/);
    expect(() => loadConfig({ auth: authEnv }, { ADMIN_KEY: 'short' })).toThrow(/^ADMIN_KEY: /);
    expect(() => loadConfig({ auth: authEnv }, { ADMIN_KEY: 'short' })).not.toThrow(/short/);
  });

  it('exits the process with one line naming the variable', () => {
    const dist = path.resolve(__dirname, '../dist/index.js');
    const script = `require(${JSON.stringify(dist)}).loadConfigOrExit({ redis: require(${JSON.stringify(dist)}).redisEnv }); console.log('started')`;
    const run = spawnSync(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH, REDIS_URL: 'notaurl' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stdout).not.toContain('started');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('REDIS_URL');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ fal: falEnv }, { FAL_KEY: '' }).fal.mode).toBe('simulator');
  });
});

describe('training presets from the environment', () => {
  it('applies FAL_PRESET_* JSON overrides to one preset only', () => {
    const { training } = loadConfig(
      { training: trainingEnv },
      { FAL_PRESET_FAST: '{"portrait":{"steps":700}}' },
    );
    expect(training.presets.fast.portrait.steps).toBe(700);
    expect(training.presets.fast.portrait.learning_rate).toBe(0.0002);
    expect(training.presets.balanced.portrait.steps).toBe(1000);
    expect(training.proTrainerEndpoint).toBe('fal-ai/flux-pro-trainer');
  });

  it('accepts the seed guide variables as they are', () => {
    const { training } = loadConfig(
      { training: trainingEnv },
      {
        FAL_PRESET_FAST: '{"portrait": {"steps": 500}, "general": {"iterations": 200}}',
        FAL_PRESET_QUALITY: '{"portrait": {"steps": 2500}, "general": {"iterations": 1000}}',
      },
    );
    expect(training.presets.quality.general.iterations).toBe(1000);
  });

  it('refuses a preset override that is not JSON or names an unknown setting', () => {
    expect(() => loadConfig({ training: trainingEnv }, { FAL_PRESET_FAST: '{steps:1' })).toThrow(
      /^FAL_PRESET_FAST: is not valid JSON/,
    );
    expect(() =>
      loadConfig({ training: trainingEnv }, { FAL_PRESET_BALANCED: '{"portrait":{"stepz":1}}' }),
    ).toThrow(/^FAL_PRESET_BALANCED/);
  });

  it('chooses the LoRA trainer for the pro worker by configuration', () => {
    const env = { PRO_TRAINER_ENDPOINT: 'fal-ai/flux-lora-fast-training' };
    expect(loadConfig({ training: trainingEnv }, env).training.proTrainerEndpoint).toBe(
      'fal-ai/flux-lora-fast-training',
    );
    expect(() => loadConfig({ training: trainingEnv }, { PRO_TRAINER_ENDPOINT: 'fal-ai/other' })).toThrow(
      /^PRO_TRAINER_ENDPOINT/,
    );
  });
});
