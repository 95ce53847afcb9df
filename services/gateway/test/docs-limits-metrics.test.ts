import SwaggerParser from '@apidevtools/swagger-parser';
import { waitFor } from '@aisha/testkit';
import { KEYS, startSystem, uploadPhotos, type System } from './system-harness';

// A third tenant of its own for the metrics flow: the rate-limit test spends acme's and globex's budget.
const INITECH = 'initech-key-001';
// A fourth, for the failed-auth limiter's test.
const UMBRELLA = 'umbrella-key-01';
let system: System;
beforeAll(async () => {
  system = await startSystem({
    env: {
      RATE_LIMIT_PER_MINUTE: '5',
      AUTH_FAILURES_PER_MINUTE: '3',
      API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex},initech:${INITECH},umbrella:${UMBRELLA}`,
    },
  });
});
afterAll(() => system.stop());

describe('API documents', () => {
  it('/openapi.json is a valid OpenAPI 3.1 document generated from the schemas', async () => {
    const res = await fetch(`${system.gateway.url}/openapi.json`);
    const document = await res.json();
    expect(document.openapi).toBe('3.1.0');
    await expect(SwaggerParser.validate(structuredClone(document))).resolves.toBeDefined();
    expect(document.components.schemas.CreateGeneration.properties.finetune_strength).toMatchObject({
      minimum: 0,
      maximum: 2,
    });
  });

  it('/docs renders Swagger UI from local assets', async () => {
    const page = await fetch(`${system.gateway.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(html).not.toMatch(/https?:\/\//);
    const bundle = await fetch(`${system.gateway.url}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
  });
});

describe('request ids, rate limits and metrics', () => {
  it('answers with a request id, echoing a sane one', async () => {
    const res = await fetch(`${system.gateway.url}/v1/avatars/av_none`, {
      headers: { authorization: 'Bearer globex-key-001', 'x-request-id': 'trace-123' },
    });
    expect(res.headers.get('x-request-id')).toBe('trace-123');
    // The README's format, [A-Za-z0-9._:-]{1,128}: echoed when it fits, replaced otherwise.
    const echoed = async (id: string) =>
      (await fetch(`${system.gateway.url}/healthz`, { headers: { 'x-request-id': id } })).headers.get(
        'x-request-id',
      );
    expect(await echoed('svc:a_b.c-1')).toBe('svc:a_b.c-1');
    expect(await echoed('x'.repeat(128))).toBe('x'.repeat(128));
    expect(await echoed('x'.repeat(129))).toMatch(/^[0-9a-f-]{36}$/);
    expect(await echoed('a b/c')).toMatch(/^[0-9a-f-]{36}$/);
    const fresh = await fetch(`${system.gateway.url}/healthz`);
    expect(fresh.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sends helmet security headers, with a CSP that forbids inline scripts on /docs', async () => {
    const res = await fetch(`${system.gateway.url}/docs`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('limits each tenant with 429, Retry-After and RateLimit headers', async () => {
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await system.api('GET', '/v1/avatars/av_none'));
    expect(answers.slice(0, 5).map((a) => a.status)).toEqual([404, 404, 404, 404, 404]);
    expect(answers[5]!.status).toBe(429);
    expect(answers[5]!.type).toContain('application/problem+json');
    const res = await fetch(`${system.gateway.url}/v1/avatars/av_none`, {
      headers: { authorization: 'Bearer acme-key-0001' },
    });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.headers.get('ratelimit-policy')).toContain('5');
    // Another tenant has its own budget.
    expect((await system.api('GET', '/v1/avatars/av_none', undefined, 'globex-key-001')).status).toBe(404);
  });

  it('exports HTTP, row and queue metrics', async () => {
    const text = await (await fetch(`${system.gateway.url}/metrics`)).text();
    expect(text).toMatch(
      /http_request_duration_seconds_count\{[^}]*method="GET",route="\/v1\/avatars\/:id",status="404"[^}]*\} \d+/,
    );
    expect(text).toContain('queue_jobs{queue="train-portrait",state="waiting",service="gateway"}');
    expect(text).toContain('gateway_oldest_open_seconds{entity="training",service="gateway"}');
    const ready = await fetch(`${system.gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    // Not only the stores: the recorder and the sweep, whose BullMQ workers must be running.
    expect((await ready.json()).checks).toEqual({ postgres: true, redis: true, recorder: true, sweep: true });
  });

  it('rows by state and type, durations and outcomes move after a real training and generation', async () => {
    const before = await scrape();
    const api = (method: string, path: string, body?: unknown) => system.api(method, path, body, INITECH);
    const zip = await uploadPhotos(system.sim.connection, 3);
    const avatar = await api('POST', '/v1/avatars', {
      name: 'm',
      training_type: 'portrait',
      images_data_url: zip,
    });
    await api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
    const status = (table: string, column: string) => async () =>
      (await system.db.query(`SELECT status FROM ${table} WHERE ${column} = $1`, [avatar.body.id])).rows[0]
        ?.status;
    await waitFor(async () => (await status('trainings', 'avatar_id')()) === 'completed', 20_000);
    const generation = await api('POST', '/v1/generations', { avatar_id: avatar.body.id, prompt: 'TOK' });
    expect(generation.status).toBe(202);
    await waitFor(async () => (await status('generations', 'avatar_id')()) === 'completed', 20_000);
    const after = await scrape();

    const training = { entity: 'training', status: 'completed', training_type: 'portrait' };
    expect(after('gateway_rows', training)).toBe(before('gateway_rows', training) + 1);
    const generated = { entity: 'generation', status: 'completed', training_type: 'portrait' };
    expect(after('gateway_rows', generated)).toBe(before('gateway_rows', generated) + 1);
    for (const [entity, kind] of [
      ['training', 'portrait'],
      ['generation', 'generation'],
    ] as const) {
      const outcome = { entity, kind, outcome: 'completed' };
      expect(after('gateway_outcomes_total', outcome)).toBe(before('gateway_outcomes_total', outcome) + 1);
      for (const from of ['queued', 'submitted']) {
        const labels = { ...outcome, from };
        expect(after('gateway_job_duration_seconds_count', labels)).toBe(
          before('gateway_job_duration_seconds_count', labels) + 1,
        );
      }
    }
  });
});

/** The gateway's /metrics now, as a lookup: the sum of a series' samples whose labels include `labels`. */
async function scrape() {
  const text = await (await fetch(`${system.gateway.url}/metrics`)).text();
  const samples = text
    .split('\n')
    .map((line) => /^(\w+)\{([^}]*)\} (\S+)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(([, name, labels, value]) => ({
      name,
      labels: Object.fromEntries([...labels!.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v])),
      value: Number(value),
    }));
  return (name: string, labels: Record<string, string>) =>
    samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
}

// Last: once over its limit, this test's address (every test's) is refused for keys the gateway has not cached.
describe('the failed-auth limiter', () => {
  it('refuses an address that keeps sending wrong API keys, but not the keys it already knows', async () => {
    const get = (key: string) => system.api('GET', '/v1/avatars/av_none', undefined, key);
    expect((await get(UMBRELLA)).status).toBe(404);
    const wrong = [];
    for (let i = 0; i < 4; i++) wrong.push(await get(`guess-${i}`));
    expect(wrong.map((a) => a.status)).toEqual([401, 401, 401, 429]);
    expect(wrong[3]!.type).toContain('application/problem+json');
    expect(wrong[3]!.body.detail).toContain('wrong API key');
    const refused = await fetch(`${system.gateway.url}/v1/avatars/av_none`, {
      headers: { authorization: 'Bearer guess-again' },
    });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // A key the gateway checked a moment ago is not held back by someone else's guessing from the same address.
    expect((await get(UMBRELLA)).status).toBe(404);
  });
});
