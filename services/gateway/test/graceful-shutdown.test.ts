import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';
import { freePort, uniquePrefix, waitFor } from '@aisha/testkit';

// The gateway as production runs it (`node dist/main.js`, built by `npx tsc -b`), stopped as an orchestrator does.
const MAIN = path.resolve(__dirname, '../dist/main.js');
const KEY = 'shutdown-key-01';
const database = `aisha_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let gateway: ChildProcess;
let port: number;
let output = '';

beforeAll(async () => {
  port = await freePort();
  gateway = spawn('node', [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: uniquePrefix(),
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
      FAL_KEY: 'sim-key-unused',
      API_KEYS: `acme:${KEY}`,
      ADMIN_KEY: 'admin-key-for-tests',
      GATEWAY_PORT: String(port),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  gateway.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok,
    20_000,
    'the gateway to listen',
  );
});

afterAll(async () => {
  if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGKILL');
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
});

it('on SIGTERM finishes the request in flight, then exits 0', async () => {
  const body = JSON.stringify({ name: 'in flight', training_type: 'portrait' });
  const exited = new Promise<number | null>((resolve) => gateway.once('exit', (code) => resolve(code)));
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/avatars',
        agent: false,
        headers: {
          authorization: `Bearer ${KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    // Half the body now: the request is in flight when the signal lands.
    req.write(body.slice(0, 10));
    void (async () => {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok);
      gateway.kill('SIGTERM');
      await waitFor(() => output.includes('shutting down'), 5_000, 'the gateway to start shutting down');
      req.end(body.slice(10));
    })().catch(reject);
  });

  const { status, body: text } = await answer;
  expect(status).toBe(201);
  expect(JSON.parse(text)).toMatchObject({ name: 'in flight', status: 'draft' });
  expect(await exited).toBe(0);
  // New connections are refused once it has stopped accepting.
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
});
