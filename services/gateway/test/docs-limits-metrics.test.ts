import SwaggerParser from '@apidevtools/swagger-parser';
import { startSystem, type System } from './system-harness';

let system: System;
beforeAll(async () => {
  system = await startSystem({ env: { RATE_LIMIT_PER_MINUTE: '5' } });
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
    expect((await fetch(`${system.gateway.url}/readyz`)).status).toBe(200);
  });
});
