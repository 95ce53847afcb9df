import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JwksCache } from '../src/jwks-cache';

// A JWKS host that answers slowly, as fal's may on a cold start.
let server: http.Server;
let url = '';
let fetches = 0;
beforeAll(async () => {
  const { publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  server = http.createServer((_req, res) => {
    fetches += 1;
    setTimeout(
      () => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })),
      200,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

it('gives deliveries that arrive during the first fetch the keys it brings, with one fetch', async () => {
  const cache = new JwksCache(url);
  const answers = await Promise.all(Array.from({ length: 10 }, () => cache.current()));
  expect(answers.map((keys) => keys.length)).toEqual(Array(10).fill(1));
  expect(fetches).toBe(1);
});
