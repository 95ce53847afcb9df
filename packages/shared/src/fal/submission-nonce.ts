import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * fal's queue API has no idempotency key: a submit whose answer we never heard (a crash, a timeout) may have
 * created a request anyway. Each submit therefore carries a fresh random nonce in its webhook URL. webhook-ingest
 * records, for every verified delivery, which fal request id came back under which nonce; a retried job that finds
 * its last nonce there adopts that request instead of submitting again. The nonce is unsigned like the rest of the
 * URL, but it is 128 random bits known only to us and fal, so a replayed delivery cannot name another job's.
 */
export const submissionNonce = z.string().regex(/^[0-9a-f]{32}$/);

export function newSubmissionNonce(): string {
  return randomBytes(16).toString('hex');
}

/** Redis key: the fal request id whose verified webhook carried this nonce. */
export function submissionNonceKey(prefix: string, nonce: string): string {
  return `${prefix}:fal-nonce:${nonce}`;
}
