import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './redis-server';
import { waitFor } from './wait-for';

const ROOT = path.resolve(__dirname, '../../..');

/** Each service with the variable that sets its port, in start order (fal-sim first, workers last). */
export const SERVICE_PORT_VARIABLES = {
  'fal-sim': 'FAL_SIM_PORT',
  gateway: 'GATEWAY_PORT',
  'webhook-ingest': 'INGEST_PORT',
  'portrait-worker': 'PORTRAIT_WORKER_PORT',
  'pro-worker': 'PRO_WORKER_PORT',
  'ultra-worker': 'ULTRA_WORKER_PORT',
} as const;
export type ServiceName = keyof typeof SERVICE_PORT_VARIABLES;
export const SERVICE_NAMES = Object.keys(SERVICE_PORT_VARIABLES) as ServiceName[];

export interface SystemOptions {
  /** Redis of the run (default the machine's); a dedicated one lets a test restart it. */
  redisUrl?: string;
  /** `FAL_SIM_*` variables: durations, fault rates. */
  sim?: Record<string, string>;
  /** Extra variables for every service (sweep timings, concurrency, log level). */
  env?: Record<string, string>;
}

/**
 * The whole system as production runs it: fal-sim and the five services, each its own `node dist/main.js`
 * process (built by `tsc -b`), on a database and a queue prefix of their own. Tests, the chaos run and the
 * benchmark drive it over HTTP only. Each process's output goes to a file in `logDir` (`tail(name)` reads it).
 */
export async function launchSystem(options: SystemOptions = {}) {
  const ports = Object.fromEntries(
    await Promise.all(SERVICE_NAMES.map(async (name) => [name, await freePort()] as const)),
  ) as Record<ServiceName, number>;
  const urls = Object.fromEntries(
    SERVICE_NAMES.map((name) => [name, `http://127.0.0.1:${ports[name]}`]),
  ) as Record<ServiceName, string>;
  const database = `aisha_sys_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const apiKey = `sys-${randomUUID()}`;
  const adminKey = `admin-${randomUUID()}`;
  const prefix = `{sys-${randomUUID().slice(0, 8)}}`;
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'aisha-system-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    REDIS_URL: options.redisUrl ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
    FAL_KEY: 'fal-sim-key',
    FAL_SIM_KEYS: 'fal-sim-key',
    FAL_QUEUE_URL: urls['fal-sim'],
    FAL_REST_URL: urls['fal-sim'],
    FAL_JWKS_URL: `${urls['fal-sim']}/.well-known/jwks.json`,
    FAL_SIM_PUBLIC_URL: urls['fal-sim'],
    PUBLIC_WEBHOOK_BASE_URL: urls['webhook-ingest'],
    API_KEYS: `acme:${apiKey}`,
    ADMIN_KEY: adminKey,
    LOG_LEVEL: 'info',
    ...Object.fromEntries(SERVICE_NAMES.map((name) => [SERVICE_PORT_VARIABLES[name], String(ports[name])])),
    ...options.sim,
    ...options.env,
  };

  const children = new Map<ServiceName, ChildProcess>();
  // For assertions on the system of record (what a test cannot see over HTTP: transitions, timings).
  let pool: pg.Pool | undefined;
  const logs = new Map<ServiceName, WriteStream>();

  async function start(name: ServiceName) {
    const logFile = logs.get(name) ?? createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
    logs.set(name, logFile);
    const child = spawn(process.execPath, [path.join(ROOT, 'services', name, 'dist', 'main.js')], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(logFile, { end: false });
    child.stderr!.pipe(logFile, { end: false });
    children.set(name, child);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${tail(name)}`);
        return (await fetch(`${urls[name]}/healthz`).catch(() => null))?.ok;
      },
      30_000,
      `${name} to answer /healthz`,
    );
  }

  function exited(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
  }

  /** Stops one service: SIGKILL (a crash) by default, SIGTERM for a clean stop. Resolves once it has exited. */
  async function kill(name: ServiceName, signal: NodeJS.Signals = 'SIGKILL') {
    const child = children.get(name);
    if (!child) return;
    children.delete(name);
    child.kill(signal);
    await exited(child);
  }

  function tail(name: ServiceName, lines = 30): string {
    try {
      return readFileSync(path.join(logDir, `${name}.log`), 'utf8')
        .trimEnd()
        .split('\n')
        .slice(-lines)
        .join('\n');
    } catch {
      return '(no output)';
    }
  }

  async function stop() {
    const running = [...children.entries()].reverse();
    const codes: Partial<Record<ServiceName, number | null>> = {};
    await Promise.all(
      running.map(async ([name, child]) => {
        children.delete(name);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited(child);
        clearTimeout(timer);
        codes[name] = child.exitCode;
      }),
    );
    for (const stream of logs.values()) stream.end();
    await pool?.end();
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
    rmSync(logDir, { recursive: true, force: true });
    return codes;
  }

  try {
    for (const name of SERVICE_NAMES) await start(name);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    urls,
    apiKey,
    adminKey,
    database,
    prefix,
    env,
    logDir,
    /** One call to the gateway's API as a tenant would make it. */
    async api(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`${urls.gateway}${route}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    /** fal-sim's control API (`/_sim/faults`, `/_sim/stats`, `/_sim/requests`); throws on an answer other than 2xx. */
    async sim(route: string, body?: unknown) {
      const res = await fetch(`${urls['fal-sim']}/_sim/${route}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      // A refused control call (a fault setting fal-sim rejects) must not leave a test running fault-free.
      if (!res.ok) throw new Error(`fal-sim /_sim/${route} answered ${res.status}: ${await res.text()}`);
      return res.json();
    },
    /** A read of the system's database, for assertions. */
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
      pool ??= new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
      return (await pool.query<R>(sql, params)).rows;
    },
    pid: (name: ServiceName) => children.get(name)?.pid,
    running: (name: ServiceName) => children.has(name),
    start,
    kill,
    async restart(name: ServiceName) {
      await kill(name);
      await start(name);
    },
    tail,
    stop,
  };
}
export type RunningSystem = Awaited<ReturnType<typeof launchSystem>>;

/** Drops a database a test had a process create (the local PostgreSQL, as `launchSystem` uses it). */
export async function dropDatabase(database: string): Promise<void> {
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
