import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropDatabase, freePort, startDedicatedRedis, waitFor } from '@aisha/testkit';

// What a newcomer does: `npm start` (here its last step, `node scripts/start.mjs`: `npm test` has built
// everything with `tsc -b`), then `npm run demo` in another shell, then Ctrl-C. No FAL_KEY: simulator mode.
const ROOT = path.resolve(__dirname, '../..');
const PORT_VARIABLES = [
  'GATEWAY_PORT',
  'INGEST_PORT',
  'PORTRAIT_WORKER_PORT',
  'PRO_WORKER_PORT',
  'ULTRA_WORKER_PORT',
  'FAL_SIM_PORT',
] as const;
// Variables of the developer's shell that would change the mode or the keys this test expects.
const NOT_INHERITED = [
  'FAL_KEY',
  'API_KEYS',
  'ADMIN_KEY',
  'PUBLIC_WEBHOOK_BASE_URL',
  'FAL_QUEUE_URL',
  'FAL_REST_URL',
  'FAL_JWKS_URL',
  'FAL_SIM_URL',
  'FAL_SIM_PUBLIC_URL',
  'GATEWAY_URL',
  'DEMO_API_KEY',
];

let redis: Awaited<ReturnType<typeof startDedicatedRedis>>;
let start: ChildProcess | undefined;
let startOutput = '';
let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
const ports = {} as Record<(typeof PORT_VARIABLES)[number], number>;
const database = `aisha_start_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const outputDir = mkdtempSync(path.join(os.tmpdir(), 'aisha-demo-'));
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  redis = await startDedicatedRedis();
  for (const name of PORT_VARIABLES) ports[name] = await freePort();
  env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !NOT_INHERITED.includes(name)));
  Object.assign(env, {
    ...Object.fromEntries(PORT_VARIABLES.map((name) => [name, String(ports[name])])),
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `{start-${randomUUID().slice(0, 8)}}`,
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
    LOG_LEVEL: 'warn',
    FAL_SIM_QUEUE_MS: '20',
    FAL_SIM_TRAINING_MS: '200',
    FAL_SIM_GENERATION_MS: '50',
  });
  // Its own process group, so that a failed test can still kill whatever it left.
  start = spawn(process.execPath, [path.join(ROOT, 'scripts/start.mjs')], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  start.stdout!.on('data', (chunk: Buffer) => (startOutput += chunk.toString()));
  start.stderr!.on('data', (chunk: Buffer) => (startOutput += chunk.toString()));
  const child = start;
  exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`start.mjs exited (${child.exitCode}):\n${startOutput}`);
      return startOutput.includes('Ctrl-C stops everything.');
    },
    90_000,
    "start.mjs's banner",
  );
}, 120_000);

afterAll(async () => {
  if (start?.pid && start.exitCode === null && start.signalCode === null) {
    process.kill(-start.pid, 'SIGKILL');
    await exit;
  }
  await redis?.destroy();
  await dropDatabase(database);
  rmSync(outputDir, { recursive: true, force: true });
});

/** Every process below `pid`, from `ps` (the services are start.mjs's children). */
function descendants(pid: number): number[] {
  const children = spawnSync('ps', ['--ppid', String(pid), '-o', 'pid='], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => Number(line.trim()))
    .filter((n) => n > 0);
  return children.flatMap((child) => [child, ...descendants(child)]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('prints the URLs and the dev key of simulator mode on the ports it was given', () => {
  // eslint-disable-next-line no-control-regex -- the banner's ANSI colours
  const plain = startOutput.replace(/\x1b\[[0-9;]*m/g, '');
  expect(plain).toContain('simulator mode');
  expect(plain).toContain(`API          http://127.0.0.1:${ports.GATEWAY_PORT}/v1`);
  expect(plain).toContain(`Webhooks     http://127.0.0.1:${ports.INGEST_PORT}/v1/fal/webhook`);
  expect(plain).toContain(`fal-sim      http://127.0.0.1:${ports.FAL_SIM_PORT}`);
  expect(plain).toContain('Dev API key  dev-key');
});

it('runs the demo to a generated image that can be fetched and was saved locally', async () => {
  const demo = spawnSync(process.execPath, [path.join(ROOT, 'packages/cli/dist/demo.js')], {
    cwd: ROOT,
    env: {
      ...env,
      GATEWAY_URL: `http://127.0.0.1:${ports.GATEWAY_PORT}`,
      DEMO_OUTPUT_DIR: outputDir,
      // Far below the sweep's first poll (15 min): the training ends by its webhook, sent to INGEST_PORT.
      DEMO_TIMEOUT_S: '90',
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const said = `${demo.stdout}${demo.stderr}`;
  expect({ status: demo.status, said }).toEqual({ status: 0, said: expect.stringContaining('Done') });
  const url = /image URL: (\S+)/.exec(said)?.[1];
  const file = /saved to:\s+(\S+)/.exec(said)?.[1];
  expect(url).toBeDefined();
  expect(file).toBeDefined();
  const image = await fetch(url!);
  expect(image.status).toBe(200);
  const bytes = Buffer.from(await image.arrayBuffer());
  expect(bytes.length).toBeGreaterThan(0);
  expect(path.dirname(file!)).toBe(path.resolve(outputDir));
  expect(existsSync(file!)).toBe(true);
  expect(statSync(file!).size).toBe(bytes.length);
}, 150_000);

it('stops every service on Ctrl-C and exits 0, leaving no process behind', async () => {
  const pids = descendants(start!.pid!);
  // fal-sim and the five services.
  expect(pids.length).toBeGreaterThanOrEqual(6);
  start!.kill('SIGINT');
  const { code, signal } = await exit;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  await waitFor(() => pids.every((pid) => !alive(pid)), 5_000, 'every child to be gone').catch(
    () => undefined,
  );
  expect(pids.filter(alive)).toEqual([]);
}, 30_000);
