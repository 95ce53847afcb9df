import { waitFor, type RunningSystem } from '@aisha/testkit';

export interface GenerationCounts {
  total: number;
  open: number;
  completed: number;
  failed: number;
}

/** The generations of one avatar in PostgreSQL, the system of record, by how far they got. */
export async function countGenerations(system: RunningSystem, avatarId: string): Promise<GenerationCounts> {
  const rows = await system.query<GenerationCounts>(
    `SELECT count(*)::int AS total,
            (count(*) FILTER (WHERE status IN ('queued', 'submitted')))::int AS open,
            (count(*) FILTER (WHERE status = 'completed'))::int AS completed,
            (count(*) FILTER (WHERE status IN ('failed', 'cancelled')))::int AS failed
       FROM generations WHERE avatar_id = $1`,
    [avatarId],
  );
  return rows[0]!;
}

/**
 * Waits until `expected` generations of the avatar are terminal, printing progress every few seconds so a long
 * wait does not look like a hang. Polls every 250 ms: finer would load PostgreSQL during the measurement.
 */
export async function untilSettled(
  system: RunningSystem,
  avatarId: string,
  expected: number,
  deadlineMs: number,
  what: string,
): Promise<GenerationCounts> {
  let lastPrint = Date.now();
  return waitFor(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const counts = await countGenerations(system, avatarId);
      if (Date.now() - lastPrint > 5_000) {
        lastPrint = Date.now();
        console.error(`  … ${what}: ${counts.completed} completed, ${counts.open} open of ${expected}`);
      }
      return counts.total >= expected && counts.open === 0 ? counts : undefined;
    },
    deadlineMs,
    `${expected} generations (${what}) to finish`,
  );
}
