import { waitFor } from '@aisha/testkit';
import { startPortraitTraining, startSystem, type System } from './system-harness';

// fal's webhooks can be lost for good (it stops retrying after about 2 hours): the sweep's polls must finish the job.
let system: System;
beforeAll(async () => {
  system = await startSystem({
    sim: { trainingMs: 30, faults: { webhookDropRate: 1 } },
    env: { SWEEP_EVERY_S: '0.5', POLL_TRAINING_AFTER_S: '0.5', POLL_GENERATION_AFTER_S: '0.5' },
  });
});
afterAll(() => system.stop());

describe('with every webhook dropped', () => {
  it('trainings and generations still complete, through the sweep polling fal', async () => {
    const { avatar, training } = await startPortraitTraining(system, 'p');
    await waitFor(
      async () => (await system.api('GET', `/v1/trainings/${training.id}`)).body.status === 'completed',
      30_000,
    );
    const generation = await system.api('POST', '/v1/generations', {
      avatar_id: avatar.id,
      prompt: 'x',
    });
    const done = await waitFor(async () => {
      const g = await system.api('GET', `/v1/generations/${generation.body.id}`);
      return g.body.status === 'completed' ? g.body : undefined;
    }, 30_000);
    expect(done.images).toHaveLength(1);
    expect(system.sim.stats().webhooks.delivered).toBe(0);
    const { rows } = await system.db.query("SELECT source FROM transitions WHERE to_status = 'completed'");
    expect(rows.map((r) => r.source)).toEqual(['poll', 'poll']);
  });
});
