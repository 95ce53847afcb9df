import { spawn } from 'node:child_process';
import path from 'node:path';
import { classifyFalError, createFal } from '@aisha/shared';
import { freePort, waitFor } from '@aisha/testkit';

// fal-sim on its own, as `pnpm --filter @aisha/fal-sim start` runs it (`node dist/main.js`, built by `npx tsc -b`).
const MAIN = path.resolve(__dirname, '../dist/main.js');

function run(env: Record<string, string>) {
  const child = spawn('node', [MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

describe('fal-sim main', () => {
  it('starts from the environment with its faults, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const sim = run({
      FAL_SIM_PORT: String(port),
      FAL_SIM_KEYS: 'key-a, key-b',
      FAL_SIM_RATE_429: '1',
      FAL_SIM_RETRY_AFTER_S: '7',
      FAL_SIM_WEBHOOK_REORDER: 'true',
      FAL_SIM_ENDPOINT_MS: '{"fal-ai/flux-pro-trainer": 0}',
    });
    try {
      await waitFor(async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok, 15_000, 'fal-sim');
      expect(await (await fetch(`${url}/_sim/faults`)).json()).toMatchObject({
        rate429: 1,
        retryAfterS: 7,
        webhookReorder: true,
      });
      const fal = createFal({ key: 'key-b', queueUrl: url, restUrl: url });
      const err = await fal.submit('fal-ai/flux-lora', { prompt: 'x' }).catch((e: unknown) => e);
      expect(classifyFalError(err)).toMatchObject({ kind: 'rate_limit', retryAfterMs: 7_000 });
    } finally {
      sim.child.kill('SIGTERM');
    }
    expect(await sim.exited).toBe(0);
  });

  it('refuses a bad variable with one line naming it', async () => {
    const sim = run({ FAL_SIM_WEBHOOK_DROP: '1.5' });
    expect(await sim.exited).toBe(1);
    expect(sim.stderr()).toMatch(/^configuration error: FAL_SIM_WEBHOOK_DROP: .*\(got "1.5"\)\n$/);
  });

  it('says so in one line when its port is taken', async () => {
    const port = await freePort();
    const first = run({ FAL_SIM_PORT: String(port) });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok);
      const second = run({ FAL_SIM_PORT: String(port) });
      expect(await second.exited).toBe(1);
      expect(second.stderr()).toMatch(/^fal-sim failed to start: .*EADDRINUSE/);
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
  });
});
