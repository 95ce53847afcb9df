import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JwksCache } from '../src/jwks-cache';
import { verifyFalSignature } from '../src/verify-fal-signature';
import { waitFor } from '@aisha/testkit';
import { post, startIngest } from './ingest-harness';

// A JWKS host of the test's own: it serves `served` (or fails with `failWith`), after `delayMs`, and counts fetches.
let server: http.Server;
let url = '';
let fetches = 0;
let served: object[] = [];
let failWith: number | undefined;
let delayMs = 0;
beforeAll(async () => {
  server = http.createServer((_req, res) => {
    fetches += 1;
    setTimeout(() => {
      if (failWith) return void res.writeHead(failWith).end();
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: served }));
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

let clock = 0;
const now = () => clock;
beforeEach(() => {
  fetches = 0;
  failWith = undefined;
  delayMs = 0;
  clock = Date.parse('2026-01-01T00:00:00Z');
});

const HOUR = 3600_000;

function signingKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid: 'k', use: 'sig' } };
}
type SigningKey = ReturnType<typeof signingKey>;

/** fal's four headers for `body`, signed with `key` at the test's clock. */
function falHeaders(key: SigningKey, requestId: string, body: Buffer): Record<string, string> {
  const timestamp = String(Math.floor(clock / 1000));
  const digest = createHash('sha256').update(body).digest('hex');
  const message = Buffer.from(`${requestId}\nuser\n${timestamp}\n${digest}`);
  return {
    'x-fal-webhook-request-id': requestId,
    'x-fal-webhook-user-id': 'user',
    'x-fal-webhook-timestamp': timestamp,
    'x-fal-webhook-signature': sign(null, message, key.privateKey).toString('hex'),
  };
}

const verifyWith = (cache: JwksCache, key: SigningKey) => {
  const body = Buffer.from('{}');
  return verifyFalSignature(falHeaders(key, 'req-1', body), body, cache, clock);
};

it('gives deliveries that arrive during the first fetch the keys it brings, with one fetch', async () => {
  served = [signingKey().jwk];
  delayMs = 200;
  const cache = new JwksCache(url);
  const answers = await Promise.all(Array.from({ length: 10 }, () => cache.current()));
  expect(answers.map((keys) => keys.length)).toEqual(Array(10).fill(1));
  expect(fetches).toBe(1);
});

it('accepts `x` with and without base64 padding', async () => {
  const plain = signingKey();
  const padded = signingKey();
  served = [plain.jwk, { ...padded.jwk, x: `${padded.jwk.x}=` }];
  const keys: KeyObject[] = await new JwksCache(url, {}, undefined, now).current();
  expect(keys).toHaveLength(2);
  const message = Buffer.from('m');
  for (const [key, signer] of [
    [keys[0]!, plain],
    [keys[1]!, padded],
  ] as const) {
    expect(verify(null, message, key, sign(null, message, signer.privateKey))).toBe(true);
  }
});

it('refreshes on an unknown signature even right after start, then at most once per cooldown', async () => {
  const first = signingKey();
  const rotated = signingKey();
  served = [first.jwk];
  const cache = new JwksCache(url, {}, undefined, now);
  expect((await verifyWith(cache, first)).ok).toBe(true);

  // fal rotates its key 5 s after we started: the first delivery signed with the new key refreshes the cache.
  served = [rotated.jwk];
  clock += 5_000;
  expect((await verifyWith(cache, rotated)).ok).toBe(true);
  expect(fetches).toBe(2);

  // A stranger's signature 10 s later: within the cooldown, no fetch.
  clock += 10_000;
  expect(await verifyWith(cache, signingKey())).toMatchObject({ ok: false, reason: 'bad_signature' });
  expect(fetches).toBe(2);
  clock += 30_000;
  expect(await verifyWith(cache, signingKey())).toMatchObject({ ok: false, reason: 'bad_signature' });
  expect(fetches).toBe(3);
});

it('remembers a failed fetch only briefly', async () => {
  failWith = 500;
  const cache = new JwksCache(url, { failureTtlMs: 5_000 }, undefined, now);
  expect(await cache.current()).toEqual([]);
  expect(cache.status()).toMatchObject({
    loaded: false,
    error: expect.stringContaining('JWKS answered 500'),
  });
  clock += 1_000;
  expect(await cache.current()).toEqual([]);
  expect(fetches).toBe(1);

  failWith = undefined;
  served = [signingKey().jwk];
  clock += 5_000;
  expect(await cache.current()).toHaveLength(1);
  expect(fetches).toBe(2);
  expect(cache.status()).toEqual({ loaded: true });
});

it('stops verifying with keys older than 24 h when their refresh fails', async () => {
  const key = signingKey();
  served = [key.jwk];
  const cache = new JwksCache(url, {}, undefined, now);
  expect((await verifyWith(cache, key)).ok).toBe(true);

  failWith = 503;
  clock += 23 * HOUR;
  expect((await verifyWith(cache, key)).ok).toBe(true); // young enough: no fetch yet
  expect(fetches).toBe(1);
  clock += 1 * HOUR + 1_000;
  expect(await verifyWith(cache, key)).toMatchObject({ ok: false, reason: 'no_keys' });
  expect(fetches).toBe(2);
  clock += 1 * HOUR;
  expect(await verifyWith(cache, key)).toMatchObject({ ok: false, reason: 'no_keys' });
  expect(cache.status().loaded).toBe(false);
});

describe('webhook-ingest with its JWKS', () => {
  it('answers 503 and is not ready once its keys are 24 h old and unrefreshable; counts refreshes', async () => {
    const key = signingKey();
    served = [key.jwk];
    const ingest = await startIngest({ jwksUrl: url, now });
    try {
      await waitFor(async () => (await fetch(`${ingest.url}/readyz`)).ok, 10_000, 'ingest ready');
      const body = Buffer.from(
        JSON.stringify({ request_id: 'req-j1', status: 'OK', payload: { images: [] } }),
      );
      expect((await post(ingest.webhookUrl(), falHeaders(key, 'req-j1', body), body)).status).toBe(200);

      failWith = 500;
      clock += 25 * HOUR;
      const late = await post(ingest.webhookUrl(), falHeaders(key, 'req-j1', body), body);
      expect(late.status).toBe(503);
      expect((await fetch(`${ingest.url}/readyz`)).status).toBe(503);

      const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
      expect(metrics).toMatch(/webhook_jwks_refreshes_total\{result="ok",service="webhook-ingest"\} 1\n/);
      expect(metrics).toMatch(/webhook_jwks_refreshes_total\{result="error",service="webhook-ingest"\} 1\n/);
    } finally {
      await ingest.stop();
    }
  });
});
