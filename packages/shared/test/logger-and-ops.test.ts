import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Counter } from 'prom-client';
import { createLogger, createMetricsRegistry, opsRouter } from '@aisha/shared';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, stream };
}

describe('logger', () => {
  it('never writes secrets', () => {
    const { lines, stream } = capture();
    const log = createLogger('test', 'info', stream);
    log.info(
      { FAL_KEY: 'fal-secret-1', config: { key: 'fal-secret-2' }, headers: { authorization: 'Bearer s3' } },
      'x',
    );
    log.info({ req: { headers: { authorization: 'Key fal-secret-4' } } }, 'y');
    const out = lines.join('');
    expect(out).toContain('[redacted]');
    for (const secret of ['fal-secret-1', 'fal-secret-2', 'Bearer s3', 'fal-secret-4'])
      expect(out).not.toContain(secret);
    expect(JSON.parse(lines[0]!)).toMatchObject({ service: 'test', msg: 'x' });
  });
});

describe('ops router', () => {
  let server: ReturnType<express.Express['listen']>;
  let base: string;
  let redisUp = true;

  beforeAll(async () => {
    const registry = createMetricsRegistry('probe');
    new Counter({ name: 'probe_things_total', help: 'things', registers: [registry] }).inc(3);
    const app = express();
    app.use(opsRouter(registry, { redis: async () => (redisUp ? true : 'connection refused') }));
    server = app.listen(0);
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('serves Prometheus metrics with the service label', async () => {
    const res = await fetch(`${base}/metrics`);
    const text = await res.text();
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(text).toContain('probe_things_total{service="probe"} 3');
    expect(text).toContain('process_cpu_seconds_total');
  });

  it('reports liveness and readiness, naming the failing dependency', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    redisUp = false;
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect((await res.json()).detail).toBe('not ready: redis: connection refused');
  });
});
