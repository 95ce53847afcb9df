/**
 * The retry policy every worker follows. BullMQ is the only retry owner: it calls `retryDelay` through the
 * worker's backoff strategy. Full jitter (AWS's "exponential backoff and jitter"): a delay drawn uniformly
 * from [0, min(cap, base * 2^(attempt-1))], never shorter than fal's Retry-After, which is honoured past
 * the cap up to `RETRY_AFTER_MAX_MS`.
 */
export interface RetryPolicy {
  baseMs: number;
  capMs: number;
  attempts: number;
}

export const RETRY_POLICY: RetryPolicy = { baseMs: 2_000, capMs: 5 * 60_000, attempts: 8 };

/**
 * The longest Retry-After we wait for. A rate limit asks for seconds; an hour (a misconfigured proxy, a date
 * header in the wrong zone) would park the job far beyond what a user waits for, so it is cut to 15 min.
 */
export const RETRY_AFTER_MAX_MS = 15 * 60_000;

/** @param attempt 1 for the first retry. */
export function backoffCeiling(attempt: number, policy: RetryPolicy = RETRY_POLICY): number {
  const exp = policy.baseMs * 2 ** Math.max(0, attempt - 1);
  return Math.min(policy.capMs, exp);
}

export function retryDelay(
  attempt: number,
  retryAfterMs?: number,
  policy: RetryPolicy = RETRY_POLICY,
  random: () => number = Math.random,
): number {
  const jittered = Math.floor(random() * backoffCeiling(attempt, policy));
  return retryAfterMs === undefined
    ? jittered
    : Math.max(Math.min(retryAfterMs, RETRY_AFTER_MAX_MS), jittered);
}

/** Parses a Retry-After header (delta seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
