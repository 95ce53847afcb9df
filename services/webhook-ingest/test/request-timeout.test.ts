import net from 'node:net';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { startIngest } from './ingest-harness';

// fal abandons a delivery after 15 s: a sender that stalls mid-body must not hold a socket for Node's 300 s.
let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim();
});
afterAll(() => sim.stop());

it('answers 408 and closes a delivery whose body stops arriving, once the request timeout passes', async () => {
  const ingest = await startIngest({ jwksUrl: sim.jwksUrl, requestTimeoutMs: 500 });
  try {
    const { port } = new URL(ingest.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const startedAt = Date.now();
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      'POST /v1/fal/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"req',
    );
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - startedAt).toBeLessThan(3_000);
  } finally {
    await ingest.stop();
  }
});
