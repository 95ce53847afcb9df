import { runChaos } from './chaos-run';

// Bounded for `npm test`; `npm run chaos` soaks for CHAOS_MINUTES (default 10).
const soakMinutes = Number(process.env.CHAOS_MINUTES ?? 0);

it(
  'loses nothing and ends every row once, with processes killed, Redis restarted and fal misbehaving',
  async () => {
    const report = await runChaos({
      trainings: Number(process.env.CHAOS_TRAININGS ?? 200),
      generations: Number(process.env.CHAOS_GENERATIONS ?? 1000),
      soakMs: soakMinutes * 60_000,
      killEveryMs: 3_000,
      settleMs: 180_000,
      log: (line) => process.stdout.write(`[chaos] ${line}\n`),
    });
    const total = report.accepted.trainings + report.accepted.generations;
    process.stdout.write(
      `[chaos] ${JSON.stringify(report, null, 2)}\n` +
        `[chaos] ${total} accepted, ${report.lost} lost, ${report.notTerminal} not terminal, ` +
        `${report.multipleTerminalTransitions} ended twice, ${report.duplicateSubmissions} duplicate fal submissions ` +
        `(${((100 * report.duplicateSubmissions) / total).toFixed(2)} %, ${report.duplicatesCancelled} cancelled), ` +
        `time to terminal ` +
        `p50 ${Math.round(report.timeToTerminalMs.p50)} ms, p99 ${Math.round(report.timeToTerminalMs.p99)} ms\n`,
    );
    expect(report.accepted.trainings).toBeGreaterThanOrEqual(200);
    expect(report.accepted.generations).toBeGreaterThanOrEqual(1000);
    expect(report.lost).toBe(0);
    expect(report.notTerminal).toBe(0);
    expect(report.multipleTerminalTransitions).toBe(0);
    // fal's queue API has no idempotency key: a worker SIGKILLed while fal accepts a submit leaves a request we
    // never heard of. Workers adopt such requests through their webhook's nonce; what slips through stays rare.
    expect(report.duplicateSubmissions).toBeLessThanOrEqual(total * 0.005);
    // The faults configured really happened (a refused /_sim/faults call would leave a fault-free run).
    const notInjected = ['http429', 'http5xx', 'hangs', 'webhooksDropped', 'webhooksDuplicated'].filter(
      (fault) => !((report.faults[fault] ?? 0) > 0),
    );
    expect(notInjected).toEqual([]);
    // Retries absorb the faults: nearly every row completes, and what failed says why.
    const completed = report.byStatus.completed ?? 0;
    if (completed < total) {
      process.stdout.write(`[chaos] rows not completed, by error: ${JSON.stringify(report.failureErrors)}\n`);
    }
    expect(completed / total).toBeGreaterThanOrEqual(0.95);
    expect(report.redisRestarts).toBe(1);
    expect(Object.values(report.kills).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
  },
  (soakMinutes * 60 + 480) * 1000,
);
