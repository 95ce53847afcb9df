import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { SERVICE_NAMES, launchSystem, waitFor, type RunningSystem } from '@aisha/testkit';
import { benchGatewayHttp } from './gateway-http';
import { benchPipeline, PIPELINE_LOAD } from './pipeline';
import { trainReadyAvatar } from './ready-avatar';
import { formatReport, type BenchResults } from './report';
import { RssSampler } from './rss';
import { readServiceLogs } from './service-logs';
import {
  benchWebhookIngest,
  createBenchSigner,
  startJwksServer,
  WEBHOOK_LOAD,
  type BenchSigner,
} from './webhook-ingest';

const REDIS_PORT = 6379;
const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;
const RESULTS_FILE = path.resolve(__dirname, '../../../bench-results.json');
const LOAD_PHASES = ['webhook', 'pipeline', 'gateway'];
/** Long enough for four RSS samples of the services at rest. */
const IDLE_WINDOW_MS = 1_000;

interface Bench {
  system: RunningSystem;
  redis: Redis;
  signer: BenchSigner;
  /** The baselines' queues live under a prefix of their own, removed at the end like the system's. */
  barePrefix: string;
  tmpDir: string;
}

async function main() {
  const started = Date.now();
  // Anything else busy on the machine (a test suite in another shell) makes every figure noisy: say so up front.
  const loadAverageAtStart = os.loadavg()[0]!;
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'aisha-bench-'));
  const signer = createBenchSigner();
  const jwks = await startJwksServer(signer);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const barePrefix = `{bench-${randomUUID().slice(0, 8)}}`;
  let system: RunningSystem | undefined;

  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      step('stopping');
      await system?.stop();
      await jwks.close();
      await forgetKeys(redis, [barePrefix, ...(system ? [system.prefix] : [])]);
      redis.disconnect();
      rmSync(tmpDir, { recursive: true, force: true });
    })());
  // Ctrl-C still drops the run's database and Redis keys.
  const onInterrupt = () => void cleanUp().finally(() => process.exit(130));
  process.once('SIGINT', onInterrupt);

  try {
    step('starting fal-sim and the five services');
    system = await launchSystem({
      sim: { FAL_SIM_QUEUE_MS: '0', FAL_SIM_GENERATION_MS: '0', FAL_SIM_TRAINING_MS: '200' },
      env: {
        LOG_LEVEL: 'warn',
        // The limiter must not answer 429 to a benchmark; it still runs (one Redis round trip a request).
        RATE_LIMIT_PER_MINUTE: '1000000',
        WORKER_CONCURRENCY: '50',
        FAL_JWKS_URL: jwks.url,
      },
    });
    jwks.includeKeysOf(`${system.urls['fal-sim']}/.well-known/jwks.json`);
    const results = await measure({ system, redis, signer, barePrefix, tmpDir });
    const report: BenchResults = {
      machine: {
        cpus: os.cpus().length,
        node: process.version,
        startedAt: new Date(started).toISOString(),
        loadAverageAtStart,
      },
      totalS: (Date.now() - started) / 1000,
      ...results,
    };
    report.problems = problemsOf(report);
    writeFileSync(RESULTS_FILE, JSON.stringify(report, null, 2) + '\n');
    console.log(formatReport(report));
    console.log(`\nfigures as JSON: ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}`);
    if (report.problems.length) process.exitCode = 1;
  } finally {
    await cleanUp();
    process.off('SIGINT', onInterrupt);
  }
}

/** The four measurements, with the services' memory and CPU sampled throughout. */
async function measure(bench: Bench): Promise<Omit<BenchResults, 'machine' | 'totalS'>> {
  const { system } = bench;
  // webhook-ingest fetches its JWKS on first use, and refuses (503) deliveries that arrive while that first
  // fetch is in flight (fal retries them seconds later): load it now, as a readiness probe would.
  await waitFor(
    async () => (await fetch(`${system.urls['webhook-ingest']}/readyz`)).ok,
    10_000,
    'webhook-ingest to load the JWKS',
  );
  const rss = new RssSampler(
    // This process too: it holds the load generator (a worker thread) and the bare baselines.
    { ...Object.fromEntries(SERVICE_NAMES.map((name) => [name, system.pid(name)!])), bench: process.pid },
    {
      // PostgreSQL names each backend's database in its process title.
      'postgres: this run’s backends': new RegExp(`^postgres: .* ${system.database} `),
      'postgres: wal writer, checkpointer… (shared)':
        /^postgres: \S+: (walwriter|checkpointer|background writer|autovacuum)/,
      [`redis-server :${REDIS_PORT} (shared)`]: new RegExp(`^redis-server 127\\.0\\.0\\.1:${REDIS_PORT}`),
    },
  );
  await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));

  rss.enter('setup');
  step('training two avatars through the API (preset fast)');
  const [gatewayAvatar, pipelineAvatar] = await Promise.all([
    trainReadyAvatar(system, 'bench gateway'),
    trainReadyAvatar(system, 'bench pipeline'),
  ]);

  // The gateway's benchmark leaves its generations queued (see gateway-http.ts), so it runs last.
  rss.enter('webhook');
  step('2. bare verify baseline, then webhook-ingest with signed deliveries');
  const webhook = await benchWebhookIngest(bench);

  rss.enter('pipeline');
  step(`3. pipeline: ${PIPELINE_LOAD.generations} generations until completed`);
  const pipeline = await benchPipeline({ ...bench, avatarId: pipelineAvatar });

  rss.enter('gateway');
  step('1. bare enqueue baseline, then gateway POST /v1/generations');
  const gateway = await benchGatewayHttp({ ...bench, avatarId: gatewayAvatar });

  return {
    gateway: {
      ...gateway,
      ratio: {
        perSecond: gateway.gateway.okPerSecond / gateway.bare.okPerSecond,
        p99: gateway.gateway.latencyMs.p99 / gateway.bare.latencyMs.p99,
      },
    },
    webhook: {
      ...webhook,
      ratio: {
        perSecond: webhook.ingest.okPerSecond / webhook.bare.okPerSecond,
        p99: webhook.ingest.latencyMs.p99 / webhook.bare.latencyMs.p99,
      },
    },
    pipeline: {
      ...pipeline,
      ratioToGatewayIntake: pipeline.generationsPerSecond / gateway.gateway.okPerSecond,
    },
    rss: { phases: ['idle', ...LOAD_PHASES], ...rss.stop() },
    // Read before stop(), which deletes the log directory.
    logs: readServiceLogs(system),
    problems: [],
  };
}

/** A run whose load was refused or whose generations did not all finish measures the wrong thing: say so. */
function problemsOf(r: BenchResults): string[] {
  const problems: string[] = [];
  for (const [what, load] of [
    ['bare enqueue', r.gateway.bare],
    ['gateway', r.gateway.gateway],
    ['bare verify', r.webhook.bare],
    ['webhook-ingest', r.webhook.ingest],
    ['pipeline posting', r.pipeline.posting],
  ] as const) {
    if (load.non2xx || load.errors) {
      problems.push(
        `${what}: ${load.non2xx} non-2xx answers (${JSON.stringify(load.statusCodes)}), ${load.errors} connection errors`,
      );
    }
  }
  if (r.webhook.ingestOutcomes.accepted !== WEBHOOK_LOAD.deliveries) {
    problems.push(
      `webhook-ingest accepted ${JSON.stringify(r.webhook.ingestOutcomes)} of ${WEBHOOK_LOAD.deliveries}`,
    );
  }
  if (r.pipeline.counts.completed !== PIPELINE_LOAD.generations) {
    problems.push(
      `pipeline: ${r.pipeline.counts.completed} of ${PIPELINE_LOAD.generations} generations completed`,
    );
  }
  return problems;
}

/** Deletes every Redis key of the run's prefixes (jobs, dedupe keys, rate-limit counters). */
async function forgetKeys(redis: Redis, prefixes: string[]) {
  for (const prefix of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
}

function step(what: string) {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${what}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
