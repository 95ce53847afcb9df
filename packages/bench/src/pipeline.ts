import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES } from '@aisha/shared';
import type { RunningSystem } from '@aisha/testkit';
import { untilSettled, type GenerationCounts } from './generation-rows';
import { runLoad, type LoadResult } from './http-load';

export const PIPELINE_LOAD = { generations: 10_000, connections: 50, deadlineMs: 180_000 };

export interface PipelineResult {
  posting: LoadResult;
  counts: GenerationCounts;
  /** From the first row's created_at to the last row's finished_at, as PostgreSQL recorded them. */
  spanS: number;
  generationsPerSecond: number;
  /** finished_at − created_at of each generation: gateway, queue, worker, fal-sim, webhook, recorder. */
  overheadMs: { p50: number; p99: number; max: number };
  /** Most jobs seen waiting at once: the stage whose queue grows is the one that cannot keep up. */
  peakWaiting: { generate: number; falEvents: number };
}

/** Seconds, from PostgreSQL's timestamps. */
type TimingRow = { span_s: number; p50: number; p99: number; max: number };

/**
 * The whole way, with fal-sim answering at once: POST 10 000 generations over HTTP (50 at a time), then wait for
 * every row to be `completed` in PostgreSQL. fal's own time is zero, so what is left is our orchestration.
 */
export async function benchPipeline(deps: {
  system: RunningSystem;
  redis: Redis;
  avatarId: string;
}): Promise<PipelineResult> {
  const waiting = watchWaiting(deps.redis, deps.system.prefix);
  let posting: LoadResult;
  let counts: GenerationCounts;
  let peakWaiting: PipelineResult['peakWaiting'];
  try {
    posting = await runLoad({
      url: `${deps.system.urls.gateway}/v1/generations`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${deps.system.apiKey}` },
      body: JSON.stringify({ avatar_id: deps.avatarId, prompt: 'a portrait in soft light' }),
      connections: PIPELINE_LOAD.connections,
      amount: PIPELINE_LOAD.generations,
    });
    counts = await untilSettled(deps.system, deps.avatarId, posting.ok, PIPELINE_LOAD.deadlineMs, 'pipeline');
  } finally {
    peakWaiting = await waiting.stop();
  }

  // An aggregate always answers one row.
  const [stats] = (await deps.system.query<TimingRow>(
    `SELECT extract(epoch FROM max(finished_at) - min(created_at))::float8 AS span_s,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::float8 AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))::float8 AS p99,
            max(extract(epoch FROM finished_at - created_at))::float8 AS max
       FROM generations WHERE avatar_id = $1 AND status = 'completed'`,
    [deps.avatarId],
  )) as [TimingRow];
  return {
    posting,
    counts,
    spanS: stats.span_s,
    generationsPerSecond: counts.completed / stats.span_s,
    overheadMs: { p50: stats.p50 * 1000, p99: stats.p99 * 1000, max: stats.max * 1000 },
    peakWaiting,
  };
}

/** Samples, every 500 ms, how many jobs wait in the workers' queue and in the recorder's (fal-events). */
function watchWaiting(redis: Redis, prefix: string) {
  const generate = new Queue(QUEUES.generate, { connection: redis, prefix });
  const falEvents = new Queue(QUEUES.falEvents, { connection: redis, prefix });
  const peaks = { generate: 0, falEvents: 0 };
  const sample = async () => {
    const [g, f] = await Promise.all([generate.getWaitingCount(), falEvents.getWaitingCount()]);
    peaks.generate = Math.max(peaks.generate, g);
    peaks.falEvents = Math.max(peaks.falEvents, f);
  };
  const timer = setInterval(() => void sample().catch(() => undefined), 500);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([generate.close(), falEvents.close()]);
      return peaks;
    },
  };
}
