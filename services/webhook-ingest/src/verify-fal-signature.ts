import { createHash, verify, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { FAL_WEBHOOK_HEADERS } from '@aisha/shared';
import type { JwksCache } from './jwks-cache';

export type Verification =
  | { ok: true; requestId: string; userId: string }
  | { ok: false; reason: 'missing_header' | 'stale' | 'bad_signature' | 'no_keys'; detail: string };

/** fal accepts deliveries whose timestamp is within 5 minutes of now, either way. */
export const MAX_SKEW_S = 300;

/**
 * Verifies fal's webhook signature over the raw body: ED25519 over
 * `request_id \n user_id \n timestamp \n hex(sha256(body))`, against any key of fal's JWKS.
 * Nothing of the body is trusted before this passes.
 */
export async function verifyFalSignature(
  headers: IncomingHttpHeaders,
  rawBody: Buffer,
  jwks: JwksCache,
  nowMs: number = Date.now(),
): Promise<Verification> {
  const requestId = header(headers, FAL_WEBHOOK_HEADERS.requestId);
  const userId = header(headers, FAL_WEBHOOK_HEADERS.userId);
  const timestamp = header(headers, FAL_WEBHOOK_HEADERS.timestamp);
  const signatureHex = header(headers, FAL_WEBHOOK_HEADERS.signature);
  if (!requestId || !userId || !timestamp || !signatureHex) {
    return { ok: false, reason: 'missing_header', detail: 'missing X-Fal-Webhook-* signature headers' };
  }
  const seconds = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || Math.abs(nowMs / 1000 - seconds) > MAX_SKEW_S) {
    return {
      ok: false,
      reason: 'stale',
      detail: `timestamp ${timestamp} is more than ${MAX_SKEW_S} s from now`,
    };
  }
  if (!/^[0-9a-f]{128}$/i.test(signatureHex)) {
    return { ok: false, reason: 'bad_signature', detail: 'signature is not 64 bytes of hex' };
  }
  const digest = createHash('sha256').update(rawBody).digest('hex');
  const message = Buffer.from(`${requestId}\n${userId}\n${timestamp}\n${digest}`, 'utf8');
  const signature = Buffer.from(signatureHex, 'hex');

  const keys = await jwks.current();
  if (keys.length === 0)
    return { ok: false, reason: 'no_keys', detail: jwks.status().error ?? 'no JWKS keys' };
  if (matchesAny(keys, message, signature)) return { ok: true, requestId, userId };
  // fal may have rotated its keys since we cached them: look once more.
  if ((await jwks.refreshAfterUnknownSignature()) && matchesAny(await jwks.current(), message, signature)) {
    return { ok: true, requestId, userId };
  }
  return { ok: false, reason: 'bad_signature', detail: 'signature does not match any key of the JWKS' };
}

function matchesAny(keys: KeyObject[], message: Buffer, signature: Buffer): boolean {
  return keys.some((key) => verify(null, message, key, signature));
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
