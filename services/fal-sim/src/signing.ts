import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/**
 * fal's webhook signature scheme: ED25519 over the UTF-8 bytes of
 * `request_id \n user_id \n timestamp \n hex(sha256(body))`, hex-encoded, with the public key in a JWKS.
 */
export interface WebhookSigner {
  jwks: { keys: Array<{ kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; use: 'sig'; alg: 'EdDSA' }> };
  headersFor(
    requestId: string,
    body: Buffer,
    options?: { badSignature?: boolean; now?: number },
  ): Record<string, string>;
}

export function signedMessage(requestId: string, userId: string, timestamp: string, body: Buffer): Buffer {
  const digest = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${requestId}\n${userId}\n${timestamp}\n${digest}`, 'utf8');
}

export function createWebhookSigner(userId: string): WebhookSigner {
  const key = generateKeyPairSync('ed25519');
  // A key nobody publishes: signatures made with it fail verification (the invalid-signature fault).
  const stranger = generateKeyPairSync('ed25519');
  const x = key.publicKey.export({ format: 'jwk' }).x!;
  const kid = createHash('sha256').update(x).digest('hex').slice(0, 16);
  return {
    jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x, kid, use: 'sig', alg: 'EdDSA' }] },
    headersFor(requestId, body, options = {}) {
      const timestamp = String(Math.floor((options.now ?? Date.now()) / 1000));
      const signer: KeyObject = options.badSignature ? stranger.privateKey : key.privateKey;
      const signature = sign(null, signedMessage(requestId, userId, timestamp, body), signer).toString('hex');
      return {
        'x-fal-webhook-request-id': requestId,
        'x-fal-webhook-user-id': userId,
        'x-fal-webhook-timestamp': timestamp,
        'x-fal-webhook-signature': signature,
      };
    },
  };
}
