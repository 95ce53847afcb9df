import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createFal, classifyFalError } from '@aisha/shared';
import { FAULT_ENV_VARIABLES, faultSettings, falSimEnv, startFalSim, type FalSim } from '@aisha/fal-sim';
import { startWebhookReceiver, waitFor } from '@aisha/testkit';

let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0, webhookRetryBaseMs: 10 });
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

describe('fault injection', () => {
  it('injects 429s and dropped webhooks at about the configured rates over 200 requests', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const set = await fetch(`${sim.url}/_sim/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rate429: 0.3, webhookDropRate: 0.2 }),
      });
      expect(set.status).toBe(200);
      const fal = createFal(sim.connection);
      let rateLimited = 0;
      // 200 submits, 20 at a time.
      for (let batch = 0; batch < 10; batch++) {
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            fal
              .submit('fal-ai/flux-lora', { prompt: `p${batch}-${i}` }, { webhookUrl: receiver.url })
              .catch((err: unknown) => {
                expect(classifyFalError(err).kind).toBe('rate_limit');
                rateLimited += 1;
              }),
          ),
        );
      }
      const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as {
        accepted: number;
        faults: { http429: number; webhooksDropped: number };
      };
      expect(stats.faults.http429).toBe(rateLimited);
      expect(stats.accepted).toBe(200 - rateLimited);
      // Binomial(200, 0.3): mean 60, sd 6.5; these bounds fail about once in a million runs.
      expect(rateLimited).toBeGreaterThan(25);
      expect(rateLimited).toBeLessThan(95);
      // The drop count is read afresh on each poll: webhooks of runs still ending are drawn after `stats`.
      await waitFor(
        () => receiver.deliveries.length + sim.stats().faults.webhooksDropped >= stats.accepted || undefined,
      );
      const dropped = (await (await fetch(`${sim.url}/_sim/stats`)).json()).faults.webhooksDropped as number;
      expect(receiver.deliveries.length + dropped).toBe(stats.accepted);
      const dropRate = dropped / stats.accepted;
      expect(dropRate).toBeGreaterThan(0.05);
      expect(dropRate).toBeLessThan(0.4);
      // The same counts reach Prometheus.
      const metrics = await (await fetch(`${sim.url}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(`fal_sim_faults_injected\\{kind="http429"[^}]*\\} ${rateLimited}\\n`),
      );
      expect(metrics).toMatch(
        new RegExp(`fal_sim_faults_injected\\{kind="webhooksDropped"[^}]*\\} ${dropped}\\n`),
      );
    } finally {
      await receiver.stop();
    }
  });

  it('changes only the knobs a POST /_sim/faults names, keeping the others', async () => {
    const post = (body: object) =>
      fetch(`${sim.url}/_sim/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post({ rate5xx: 0.5, retryAfterS: 5 })).status).toBe(200);
    expect((await post({ rate429: 0.3 })).status).toBe(200);
    const last = await post({ webhookDropRate: 0.2 });
    expect(await last.json()).toMatchObject({
      rate5xx: 0.5,
      retryAfterS: 5,
      rate429: 0.3,
      webhookDropRate: 0.2,
    });
    expect(await (await fetch(`${sim.url}/_sim/faults`)).json()).toMatchObject({
      rate5xx: 0.5,
      retryAfterS: 5,
      rate429: 0.3,
      webhookDropRate: 0.2,
    });
  });

  it('refuses rates of one group summing above 1, and changes nothing', async () => {
    sim.setFaults({ rate429: 0.6 });
    const bad = await fetch(`${sim.url}/_sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rate5xx: 0.3, rateTimeout: 0.2 }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).detail).toContain(
      'rate429 + rate5xx + rateTimeout + lostAnswerRate must sum to at most 1',
    );
    expect(sim.stats().faults.http5xx).toBe(0);
    expect(await (await fetch(`${sim.url}/_sim/faults`)).json()).toMatchObject({ rate429: 0.6, rate5xx: 0 });
    expect(() => sim.setFaults({ webhookDropRate: 0.7, webhookDuplicateRate: 0.4 })).toThrow(
      'webhookDropRate + webhookDuplicateRate must sum to at most 1',
    );
    expect(faultSettings.safeParse({ rate429: 0.1, rate5xx: 0.2, rateTimeout: 0.7 }).success).toBe(true);
    await expect(
      startFalSim({ faults: { webhookDropRate: 0.7, webhookDuplicateRate: 0.4 } }),
    ).rejects.toThrow('must sum to at most 1');
    const env = falSimEnv.safeParse({ FAL_SIM_RATE_429: '0.8', FAL_SIM_RATE_5XX: '0.8' });
    expect(env.error?.issues[0]).toMatchObject({ path: ['FAL_SIM_RATE_429'] });
  });

  it('reads every fault knob from its variable', () => {
    const env = Object.fromEntries(
      Object.entries(FAULT_ENV_VARIABLES).map(([knob, variable]) => [
        variable,
        knob === 'webhookReorder' ? 'true' : '0.125',
      ]),
    );
    env[FAULT_ENV_VARIABLES.latencyMs] = '3';
    env[FAULT_ENV_VARIABLES.hangMs] = '4';
    env[FAULT_ENV_VARIABLES.webhookDelayMs] = '5';
    const { faults } = falSimEnv.parse(env);
    expect(faults).toEqual({
      latencyMs: 3,
      rate429: 0.125,
      retryAfterS: 0.125,
      rate5xx: 0.125,
      rateTimeout: 0.125,
      hangMs: 4,
      lostAnswerRate: 0.125,
      runFailureRate: 0.125,
      webhookDropRate: 0.125,
      webhookDuplicateRate: 0.125,
      webhookDelayMs: 5,
      webhookReorder: true,
      webhookBadSignatureRate: 0.125,
    });
    expect(falSimEnv.parse({}).faults).toEqual(faultSettings.parse({}));
  });

  it('documents every fault knob and its variable in the README', () => {
    const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    for (const [knob, variable] of Object.entries(FAULT_ENV_VARIABLES))
      expect(readme).toMatch(new RegExp(`\\| \`${knob}\` +\\| \`${variable}\` +\\|`));
  });

  it('draws exclusive faults once, so that each configured rate is the observed rate', async () => {
    // Evenly spread draws (the midpoints of n slices): of 200 calls exactly 10 % fall under 0.1 and 5 % in
    // [0.1, 0.15). Independent draws in sequence would give the 503 only to calls that escaped the 429 (4.5 %).
    const evenly = (n: number) => {
      let i = 0;
      return () => ((i++ % n) + 0.5) / n;
    };
    const grid = await startFalSim({
      queueMs: 0,
      trainingMs: 0,
      generationMs: 0,
      faults: { rate429: 0.1, rate5xx: 0.05 },
      random: evenly(200),
    });
    try {
      const fal = createFal(grid.connection);
      for (let i = 0; i < 200; i++) await fal.submit('fal-ai/flux-lora', { prompt: `p${i}` }).catch(() => {});
      expect(grid.stats().faults).toMatchObject({ http429: 20, http5xx: 10 });
      expect(grid.stats().accepted).toBe(170);
    } finally {
      await grid.stop();
    }

    const hooks = await startFalSim({
      queueMs: 0,
      trainingMs: 0,
      generationMs: 0,
      faults: { webhookDropRate: 0.2, webhookDuplicateRate: 0.2 },
      random: evenly(100),
    });
    const receiver = await startWebhookReceiver();
    try {
      const fal = createFal(hooks.connection);
      for (let i = 0; i < 100; i++)
        await fal.submit('fal-ai/flux-lora', { prompt: `w${i}` }, { webhookUrl: receiver.url });
      await waitFor(() => hooks.stats().webhooks.delivered === 100);
      // 20 dropped, 20 sent twice, 60 once: duplicates are 20 % of all webhooks, not 20 % of those not dropped.
      expect(hooks.stats().faults).toMatchObject({ webhooksDropped: 20, webhooksDuplicated: 20 });
      expect(new Set(receiver.deliveries.map((d) => d.body.request_id)).size).toBe(80);
    } finally {
      await receiver.stop();
      await hooks.stop();
    }
  });

  it('answers 503 and hangs on demand, and refuses a malformed fault setting', async () => {
    const fal = createFal(sim.connection);
    sim.setFaults({ rate5xx: 1 });
    expect(
      classifyFalError(await fal.submit('fal-ai/flux-lora', { prompt: 'x' }).catch((e: unknown) => e)),
    ).toMatchObject({
      kind: 'transient',
      status: 503,
    });
    sim.setFaults({ rate5xx: 0, rateTimeout: 1 });
    const hung = await fal
      .submit('fal-ai/flux-lora', { prompt: 'x' }, { signal: AbortSignal.timeout(200) })
      .catch((e: unknown) => e);
    expect(classifyFalError(hung)).toMatchObject({
      kind: 'transient',
      message: 'fal unreachable: timed out',
    });

    const bad = await fetch(`${sim.url}/_sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rate429: 2 }),
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect((await bad.json()).errors[0].path).toBe('rate429');
  });

  it('loses the answer of an accepted submit, so that a retry creates a second request', async () => {
    const fal = createFal(sim.connection);
    const input = { prompt: 'the same work', seed: 7 };
    sim.setFaults({ lostAnswerRate: 1 });
    const lost = await fal.submit('fal-ai/flux-lora', input).catch((e: unknown) => e);
    expect(classifyFalError(lost)).toMatchObject({ kind: 'transient', retryable: true });
    expect(sim.requests()).toHaveLength(1);

    sim.setFaults({ lostAnswerRate: 0 });
    const { requestId } = await fal.submit('fal-ai/flux-lora', { seed: 7, prompt: 'the same work' });
    await fal.submit('fal-ai/flux-lora', { prompt: 'other work' });
    const listed = (await (await fetch(`${sim.url}/_sim/requests`)).json()) as Array<Record<string, unknown>>;
    expect(listed).toHaveLength(3);
    expect(listed.find((r) => r.request_id === requestId)).toMatchObject({
      endpoint: 'fal-ai/flux-lora',
      input,
      times_submitted: 2,
      cancel_requests: 0,
    });
    expect(listed.map((r) => r.times_submitted)).toEqual([2, 2, 1]);
    expect(sim.stats().faults.answersLost).toBe(1);
  });

  it('never faults storage, files, JWKS or /_sim, and restores the start-up faults on reset', async () => {
    // Every queue call would be refused: 429 and 5xx share one draw, so 1 is the most either can be.
    sim.setFaults({ rate429: 1 });
    expect((await fetch(`${sim.url}/.well-known/jwks.json`)).status).toBe(200);
    expect((await fetch(`${sim.url}/_sim/requests`)).status).toBe(200);
    const upload = await createFal(sim.connection).upload(new Blob(['x']));
    expect((await fetch(upload)).status).toBe(200);
    expect(sim.stats().faults.http429).toBe(0);

    const reset = await fetch(`${sim.url}/_sim/reset`, { method: 'POST' });
    expect(reset.status).toBe(204);
    expect(await (await fetch(`${sim.url}/_sim/faults`)).json()).toMatchObject({ rate429: 0, rate5xx: 0 });
  });

  it('fails runs when asked to, with an ERROR webhook and an error result', async () => {
    const receiver = await startWebhookReceiver();
    try {
      sim.setFaults({ runFailureRate: 1 });
      const fal = createFal(sim.connection);
      const { requestId } = await fal.submit(
        'fal-ai/flux-lora',
        { prompt: 'x' },
        { webhookUrl: receiver.url },
      );
      const delivery = await waitFor(() => receiver.deliveries[0]);
      expect(delivery.body).toMatchObject({ status: 'ERROR', error: 'Invalid status code: 500' });
      const err = await fal.result('fal-ai/flux-lora', requestId).catch((e: unknown) => e);
      expect(classifyFalError(err).message).toContain('simulated runner error');
    } finally {
      await receiver.stop();
    }
  });
});
