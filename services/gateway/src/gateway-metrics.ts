import type { NextFunction, Request, Response } from 'express';
import type { Queue } from 'bullmq';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '@aisha/shared';

type Row = Record<string, unknown>;
const seconds = (from: unknown, to: unknown) =>
  from instanceof Date && to instanceof Date ? (to.getTime() - from.getTime()) / 1000 : undefined;

/**
 * The gateway's series: HTTP latency by route and status, rows by state and queue depths (both read at scrape
 * time), durations and outcomes of finished rows, and duplicate fal submissions.
 */
export function gatewayMetrics(
  registry: Registry,
  pool: pg.Pool,
  queues: Queue[],
  log: Logger,
  deadlineMs: { training: number; generation: number },
) {
  const http = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'gateway_rows',
    help: "Rows by entity, status and training_type (the avatar's kind: portrait or style; a generation's is its avatar's)",
    labelNames: ['entity', 'status', 'training_type'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const { rows } = await pool.query<{
          entity: string;
          status: string;
          training_type: string;
          n: number;
        }>(
          `SELECT 'training' AS entity, status, training_type, count(*)::int AS n FROM trainings
             GROUP BY status, training_type
           UNION ALL SELECT 'generation', status, training_type, count(*)::int FROM generations
             GROUP BY status, training_type
           UNION ALL SELECT 'avatar', status, training_type, count(*)::int FROM avatars
             GROUP BY status, training_type`,
        );
        for (const r of rows)
          this.set({ entity: r.entity, status: r.status, training_type: r.training_type }, r.n);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'metrics: rows by state unavailable');
      }
    },
  });
  new Gauge({
    name: 'gateway_queue_jobs',
    help: 'Jobs in every queue by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of queues) {
        try {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
          for (const [state, n] of Object.entries(counts)) this.set({ queue: queue.name, state }, n);
        } catch (err) {
          log.warn({ queue: queue.name, err: (err as Error).message }, 'metrics: queue depth unavailable');
        }
      }
    },
  });
  new Gauge({
    name: 'gateway_oldest_open_seconds',
    help: 'Age of the oldest row not yet terminal, by entity (a stuck pipeline shows here first)',
    labelNames: ['entity'],
    registers: [registry],
    async collect() {
      try {
        const { rows } = await pool.query<{ entity: string; age: number | null }>(
          `SELECT 'training' AS entity, EXTRACT(EPOCH FROM now() - min(created_at))::float AS age FROM trainings
             WHERE status IN ('queued', 'submitted', 'in_progress')
           UNION ALL SELECT 'generation', EXTRACT(EPOCH FROM now() - min(created_at))::float FROM generations
             WHERE status IN ('queued', 'submitted')`,
        );
        for (const r of rows) this.set({ entity: r.entity }, r.age ?? 0);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'metrics: oldest open row unavailable');
      }
    },
  });
  // Published so that the "stuck" alert compares against the deadline this gateway enforces, not a copy of it.
  const deadline = new Gauge({
    name: 'gateway_deadline_seconds',
    help: 'Configured deadline by entity: the sweep fails a row still open after it',
    labelNames: ['entity'],
    registers: [registry],
  });
  deadline.set({ entity: 'training' }, deadlineMs.training / 1000);
  deadline.set({ entity: 'generation' }, deadlineMs.generation / 1000);
  const duration = new Histogram({
    name: 'gateway_job_duration_seconds',
    help: 'Time from queued (or from submitted to fal) to a terminal state, by entity, kind and outcome',
    labelNames: ['entity', 'kind', 'from', 'outcome'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800],
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'gateway_outcomes_total',
    help: 'Rows reaching a terminal state, by entity, kind and outcome (success ratio = completed / all)',
    labelNames: ['entity', 'kind', 'outcome'],
    registers: [registry],
  });
  const duplicates = new Counter({
    name: 'gateway_duplicate_submissions_total',
    help: 'Second fal requests for one row, cancelled at fal',
    labelNames: ['entity'],
    registers: [registry],
  });

  return {
    /** Express middleware: observes every request when its answer is finished. */
    httpTimer(req: Request, res: Response, next: NextFunction) {
      const stop = http.startTimer();
      res.on('finish', () => {
        // Route patterns, never raw paths: ids in a label would make one series per row.
        const route = req.route?.path
          ? `${req.baseUrl}${String(req.route.path)}`
          : req.baseUrl || 'unmatched';
        stop({ method: req.method, route, status: String(res.statusCode) });
      });
      next();
    },
    onTerminal(entity: string, outcome: string, row: Row) {
      const kind = entity === 'training' ? String(row.training_type) : 'generation';
      outcomes.inc({ entity, kind, outcome });
      const fromQueued = seconds(row.created_at, row.finished_at);
      const fromSubmitted = seconds(row.submitted_at, row.finished_at);
      if (fromQueued !== undefined) duration.observe({ entity, kind, from: 'queued', outcome }, fromQueued);
      if (fromSubmitted !== undefined)
        duration.observe({ entity, kind, from: 'submitted', outcome }, fromSubmitted);
    },
    onDuplicate(entity: string) {
      duplicates.inc({ entity });
    },
  };
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;
