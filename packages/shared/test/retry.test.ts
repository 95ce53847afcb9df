import { RETRY_AFTER_MAX_MS, RETRY_POLICY, backoffCeiling, parseRetryAfter, retryDelay } from '@aisha/shared';

describe('retry policy', () => {
  it('grows exponentially from 2 s and is capped at 5 min', () => {
    expect(backoffCeiling(1)).toBe(2_000);
    expect(backoffCeiling(2)).toBe(4_000);
    expect(backoffCeiling(5)).toBe(32_000);
    expect(backoffCeiling(20)).toBe(300_000);
    expect(RETRY_POLICY.attempts).toBe(8);
  });

  it('draws a full-jitter delay within [0, ceiling]', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      for (let i = 0; i < 200; i++) {
        const delay = retryDelay(attempt);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(backoffCeiling(attempt));
      }
    }
    expect(retryDelay(3, undefined, RETRY_POLICY, () => 0)).toBe(0);
    expect(retryDelay(3, undefined, RETRY_POLICY, () => 0.999999)).toBe(7_999);
  });

  it('never retries sooner than Retry-After', () => {
    expect(retryDelay(1, 30_000, RETRY_POLICY, () => 0.5)).toBe(30_000);
    expect(retryDelay(8, 1_000, RETRY_POLICY, () => 0.5)).toBe(128_000);
  });

  it('honours a Retry-After past the backoff cap, but never beyond 15 min', () => {
    expect(RETRY_AFTER_MAX_MS).toBe(15 * 60_000);
    expect(retryDelay(1, 600_000, RETRY_POLICY, () => 0.5)).toBe(600_000);
    expect(retryDelay(1, 3_600_000, RETRY_POLICY, () => 0.5)).toBe(RETRY_AFTER_MAX_MS);
    expect(retryDelay(20, 3_600_000, RETRY_POLICY, () => 0.999)).toBe(RETRY_AFTER_MAX_MS);
  });

  it('parses Retry-After in seconds or as an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter('0.5')).toBe(500);
    const now = Date.parse('2026-11-24T10:00:00Z');
    expect(parseRetryAfter('Tue, 24 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
