import { randomUUID } from 'node:crypto';
import { createFal } from '@aisha/shared';
import { uploadSamplePhotos } from '@aisha/cli';
import {
  launchSystem,
  startDedicatedRedis,
  waitFor,
  type RunningSystem,
  type ServiceName,
} from '@aisha/testkit';

export interface ChaosOptions {
  trainings: number;
  generations: number;
  /** Keep submitting (in rounds of the counts above) for at least this long: the soak (`npm run chaos`). */
  soakMs?: number;
  killEveryMs: number;
  /** How long every accepted row has to reach a terminal state once submitting stops. */
  settleMs: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  accepted: { trainings: number; generations: number };
  byStatus: Record<string, number>;
  lost: number;
  notTerminal: number;
  /** The first rows not terminal, with their state, for the log. */
  stuck: { id: string; status: string }[];
  multipleTerminalTransitions: number;
  falRequests: number;
  duplicateSubmissions: number;
  /** Of those, how many we cancelled at fal (an orphan left running is billed). */
  duplicatesCancelled: number;
  kills: Partial<Record<ServiceName, number>>;
  redisRestarts: number;
  timeToTerminalMs: { p50: number; p99: number; max: number };
  faults: Record<string, number>;
  /** Rows that ended `failed`, counted by their error (fal's message or ours). */
  failureErrors: Record<string, number>;
}

const ORPHAN_AFTER_S = 20;
const VICTIMS: ServiceName[] = ['portrait-worker', 'pro-worker', 'ultra-worker', 'webhook-ingest'];
const TERMINAL = ['completed', 'failed', 'cancelled'];
// What the issue asks fal-sim to inject while the driver kills processes.
const FAULTS = {
  rate429: 0.1,
  rate5xx: 0.05,
  rateTimeout: 0.05,
  // Longer than the workers' fal call timeout (FAL_CALL_TIMEOUT_MS, 14 s by default, as in production).
  hangMs: 20_000,
  webhookDropRate: 0.2,
  webhookDuplicateRate: 0.2,
};

/**
 * The chaos run: the whole system as processes on a Redis of its own (AOF on), trainings and generations
 * submitted over HTTP while a driver SIGKILLs a random worker or webhook-ingest every few seconds, Redis is
 * restarted once, and fal-sim answers 429s, 503s and hangs and drops or duplicates webhooks. Then it reads the
 * database and fal-sim's request log and reports what a user would count: lost rows, rows stuck, rows that ended
 * twice, duplicate fal submissions and time to a terminal state.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const redis = await startDedicatedRedis();
  let system: RunningSystem | undefined;
  try {
    system = await launchSystem({
      redisUrl: redis.url,
      sim: {
        FAL_SIM_QUEUE_MS: '20',
        FAL_SIM_TRAINING_MS: '300',
        FAL_SIM_GENERATION_MS: '50',
        FAL_SIM_WEBHOOK_RETRY_BASE_MS: '200',
        FAL_SIM_WEBHOOK_TIMEOUT_MS: '2000',
      },
      env: {
        LOG_LEVEL: process.env.CHAOS_DEBUG ? 'info' : 'warn',
        RATE_LIMIT_PER_MINUTE: '1000000',
        // Quick recovery, so that a bounded run sees many crashes and their repair.
        WORKER_LOCK_MS: '5000',
        WORKER_STALLED_INTERVAL_MS: '2000',
        FAL_BREAKER_RESET_MS: '2000',
        SWEEP_EVERY_S: '1',
        ORPHAN_AFTER_S: String(ORPHAN_AFTER_S),
        FAL_ADOPT_WINDOW_MS: '10000',
        POLL_TRAINING_AFTER_S: '3',
        POLL_GENERATION_AFTER_S: '3',
        TRAINING_DEADLINE_S: String(Math.ceil((options.settleMs + (options.soakMs ?? 0)) / 1000) + 600),
        GENERATION_DEADLINE_S: String(Math.ceil((options.settleMs + (options.soakMs ?? 0)) / 1000) + 600),
      },
    });
    return await drive(system, redis, options, log);
  } finally {
    await system?.stop().catch(() => undefined);
    await redis.destroy();
  }
}

async function drive(
  system: RunningSystem,
  redis: Awaited<ReturnType<typeof startDedicatedRedis>>,
  options: ChaosOptions,
  log: (line: string) => void,
): Promise<ChaosReport> {
  // Set-up without faults: the photos, and one ready avatar of each kind to generate with.
  const sim = system.urls['fal-sim'];
  const imagesUrl = await uploadSamplePhotos(
    createFal({ key: 'fal-sim-key', queueUrl: sim, restUrl: sim }),
    3,
  );
  const ready: string[] = [];
  for (const trainingType of ['portrait', 'style']) {
    const avatar = await system.api('POST', '/v1/avatars', {
      name: `ready ${trainingType}`,
      training_type: trainingType,
      images_data_url: imagesUrl,
    });
    await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
    ready.push(avatar.body.id);
  }
  for (const id of ready) {
    await waitFor(
      async () => (await system.api('GET', `/v1/avatars/${id}`)).body.status === 'ready',
      30_000,
      'the set-up avatars',
    );
  }
  await system.sim('faults', FAULTS);
  log(`faults on: ${JSON.stringify(FAULTS)}`);

  // The driver: a random victim SIGKILLed and restarted every few seconds; Redis restarted once, midway.
  const kills: Partial<Record<ServiceName, number>> = {};
  let redisRestarts = 0;
  const killLog: string[] = [];
  let chaosOn = true;
  const driver = (async () => {
    let round = 0;
    while (chaosOn) {
      await sleep(options.killEveryMs);
      if (!chaosOn) break;
      round += 1;
      if (round === 3) {
        killLog.push(`${new Date().toISOString()} redis`);
        await redis.stop();
        await sleep(1_000);
        await redis.start();
        redisRestarts += 1;
        log('redis restarted');
        continue;
      }
      const victim = VICTIMS[Math.floor(Math.random() * VICTIMS.length)]!;
      await system.kill(victim, 'SIGKILL');
      kills[victim] = (kills[victim] ?? 0) + 1;
      killLog.push(`${new Date().toISOString()} ${victim}`);
      await system.start(victim);
    }
  })();

  // The clients: every request carries an Idempotency-Key and is retried until the API accepts it.
  const accepted = { trainings: [] as string[], generations: [] as string[] };
  const submit = async (route: string, body: unknown): Promise<string> => {
    const key = randomUUID();
    for (let attempt = 1; ; attempt++) {
      const answer = await system.api('POST', route, body, { 'idempotency-key': key }).catch(() => undefined);
      if (answer && answer.status < 300) return answer.body.id as string;
      if (answer && answer.status < 500 && answer.status !== 429) {
        throw new Error(`${route} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      }
      await sleep(Math.min(2_000, 100 * attempt));
    }
  };
  const started = Date.now();
  do {
    const draft: string[] = [];
    for (let i = 0; i < options.trainings; i++) {
      draft.push(
        await submit('/v1/avatars', {
          name: `chaos ${i}`,
          training_type: i % 2 ? 'style' : 'portrait',
          images_data_url: imagesUrl,
        }),
      );
    }
    const work = [
      ...draft.map((avatarId) => async () => {
        accepted.trainings.push(await submit(`/v1/avatars/${avatarId}/trainings`, { preset: 'fast' }));
      }),
      ...Array.from({ length: options.generations }, (_, i) => async () => {
        accepted.generations.push(
          await submit('/v1/generations', { avatar_id: ready[i % 2], prompt: `chaos generation ${i}` }),
        );
      }),
    ].sort(() => Math.random() - 0.5);
    await inParallel(work, 16);
    log(`submitted ${accepted.trainings.length} trainings, ${accepted.generations.length} generations`);
  } while (options.soakMs && Date.now() - started < options.soakMs);

  // Every accepted row must end: wait, with the driver still killing, then let the system settle without it.
  try {
    const ids = [...accepted.trainings, ...accepted.generations];
    const open = async () => {
      const rows = await system.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT id FROM trainings WHERE id = ANY($1) AND status = ANY($2)
           UNION ALL SELECT id FROM generations WHERE id = ANY($1) AND status = ANY($2)) t`,
        [ids, TERMINAL],
      );
      return ids.length - rows[0]!.n;
    };
    const settleUntil = Date.now() + options.settleMs;
    while (Date.now() < settleUntil && (await open()) > 0) {
      if (chaosOn && Date.now() > settleUntil - options.settleMs / 2) {
        chaosOn = false;
        log('driver stopped: settling');
      }
      await sleep(500);
    }
    chaosOn = false;
    await driver;
    // Orphan fal requests (duplicates) are found by the sweep ORPHAN_AFTER_S after their completion: let it.
    await waitFor(
      async () =>
        (await system.query<{ n: number }>('SELECT count(*)::int AS n FROM parked_events'))[0]!.n === 0,
      (ORPHAN_AFTER_S + 15) * 1000,
      'the sweep to settle every parked completion',
    ).catch(() => log('parked completions left unsettled'));

    const found = await system.query<{ id: string; status: string; ms: number | null }>(
      `SELECT id, status, EXTRACT(EPOCH FROM finished_at - created_at) * 1000 AS ms FROM trainings WHERE id = ANY($1)
       UNION ALL
       SELECT id, status, EXTRACT(EPOCH FROM finished_at - created_at) * 1000 FROM generations WHERE id = ANY($1)`,
      [ids],
    );
    const twice = await system.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (
         SELECT row_id FROM transitions WHERE row_id = ANY($1) AND to_status = ANY($2)
         GROUP BY row_id HAVING count(*) > 1) t`,
      [ids, TERMINAL],
    );
    const byStatus: Record<string, number> = {};
    for (const row of found) byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    const times = found
      .map((r) => Number(r.ms))
      .filter((ms) => Number.isFinite(ms))
      .sort((a, b) => a - b);

    // fal requests per row of ours: the row id travels in each request's webhook URL.
    const requests: { webhook_url: string | null; cancel_requests: number; submitted_at: string }[] =
      await system.sim('requests');
    const perRow = new Map<string, typeof requests>();
    for (const request of requests) {
      const id = request.webhook_url ? new URL(request.webhook_url).searchParams.get('id') : null;
      if (id) perRow.set(id, [...(perRow.get(id) ?? []), request]);
    }
    const duplicates = [...perRow.values()].filter((list) => list.length > 1);
    if (process.env.CHAOS_DEBUG) {
      for (const list of duplicates.slice(0, 3)) {
        const id = new URL(list[0]!.webhook_url!).searchParams.get('id')!;
        log(`duplicate ${id}: ${list.map((r) => r.submitted_at).join(' ')}`);
        for (const name of [...VICTIMS, 'gateway' as const]) {
          const lines = system
            .tail(name, 100_000)
            .split('\n')
            .filter((l) => l.includes(id));
          for (const line of lines) log(`  ${name}: ${line.slice(0, 300)}`);
        }
      }
      log(`kills: ${JSON.stringify(killLog)}`);
      const open = found.filter((r) => !TERMINAL.includes(r.status)).slice(0, 3);
      for (const { id } of open) {
        const [row] = await system.query(
          `SELECT id, status, fal_request_id, fal_endpoint, updated_at FROM trainings WHERE id = $1
           UNION ALL SELECT id, status, fal_request_id, fal_endpoint, updated_at FROM generations WHERE id = $1`,
          [id],
        );
        log(`stuck ${JSON.stringify(row)}`);
        log(`  at fal: ${JSON.stringify(perRow.get(id)?.map((r) => ({ ...r, input: undefined })))}`);
        const rid = (row as { fal_request_id?: string }).fal_request_id ?? id;
        for (const name of [...VICTIMS, 'gateway' as const]) {
          const lines = system
            .tail(name, 100_000)
            .split('\n')
            .filter((l) => l.includes(id) || l.includes(rid));
          for (const line of lines.slice(-12)) log(`  ${name}: ${line.slice(0, 300)}`);
        }
      }
    }
    const stats: { faults?: Record<string, number> } = await system.sim('stats');
    const failed = await system.query<{ error: string | null; n: number }>(
      `SELECT error, count(*)::int AS n FROM (
         SELECT error FROM trainings WHERE id = ANY($1) AND status = 'failed'
         UNION ALL SELECT error FROM generations WHERE id = ANY($1) AND status = 'failed') t
       GROUP BY error ORDER BY n DESC`,
      [ids],
    );

    return {
      accepted: { trainings: accepted.trainings.length, generations: accepted.generations.length },
      byStatus,
      lost: ids.length - found.length,
      notTerminal: found.filter((r) => !TERMINAL.includes(r.status)).length,
      stuck: found
        .filter((r) => !TERMINAL.includes(r.status))
        .slice(0, 5)
        .map(({ id, status }) => ({ id, status })),
      multipleTerminalTransitions: twice[0]!.n,
      falRequests: requests.length,
      duplicateSubmissions: duplicates.reduce((sum, list) => sum + list.length - 1, 0),
      duplicatesCancelled: duplicates.reduce(
        (sum, list) => sum + list.filter((r) => r.cancel_requests > 0).length,
        0,
      ),
      kills,
      redisRestarts,
      timeToTerminalMs: {
        p50: percentile(times, 0.5),
        p99: percentile(times, 0.99),
        max: times.at(-1) ?? NaN,
      },
      faults: stats.faults ?? {},
      failureErrors: Object.fromEntries(failed.map((r) => [r.error ?? '(no error recorded)', r.n])),
    };
  } finally {
    chaosOn = false;
    await driver;
  }
}

async function inParallel(tasks: (() => Promise<void>)[], width: number) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) await tasks[next++]!();
    }),
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
