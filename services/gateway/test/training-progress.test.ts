import { waitFor } from '@aisha/testkit';
import { startPortraitTraining, startSystem, type System } from './system-harness';

// A training takes minutes at fal: the sweep's status polls are what makes its `progress` move meanwhile.
let system: System;
beforeAll(async () => {
  system = await startSystem({
    sim: { trainingMs: 4_000 },
    env: { SWEEP_EVERY_S: '0.3', POLL_TRAINING_AFTER_S: '0.3' },
  });
});
afterAll(() => system.stop());

it('a running training reports fal progress through the API before it completes', async () => {
  const { training } = await startPortraitTraining(system, 'slow');
  const get = async () => (await system.api('GET', `/v1/trainings/${training.id}`)).body;

  const running = await waitFor(async () => {
    const t = await get();
    return t.status === 'in_progress' && t.progress > 0 && t.progress < 100 ? t : undefined;
  }, 10_000);
  expect(running.result).toBeNull();
  // It keeps moving, and still ends through its webhook (or a poll) with the whole bar.
  await waitFor(async () => (await get()).progress > running.progress, 10_000);
  await waitFor(async () => (await get()).status === 'completed', 10_000);
  expect((await get()).progress).toBe(100);
});
