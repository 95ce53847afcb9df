import { waitFor } from '@aisha/testkit';
import { startPortraitTraining, startSystem, type System } from './system-harness';

// fal-sim keeps every request in its queue for a minute, so a cancel reaches fal while the request is waiting.
let system: System;
beforeAll(async () => {
  system = await startSystem({ sim: { queueMs: 60_000 } });
});
afterAll(() => system.stop());

it('cancels a submitted training at fal; the row becomes cancelled once, the avatar goes back to draft', async () => {
  const { avatar, training } = await startPortraitTraining(system, 'c');
  const submitted = await waitFor(async () => {
    const t = await system.api('GET', `/v1/trainings/${training.id}`);
    return t.body.status === 'submitted' ? t.body : undefined;
  });

  const cancel = await system.api('POST', `/v1/trainings/${training.id}/cancel`);
  expect(cancel.status).toBe(202);
  await waitFor(
    async () => (await system.api('GET', `/v1/trainings/${training.id}`)).body.status === 'cancelled',
    15_000,
    'the training to be cancelled',
  );
  const request = system.sim.requests().find((r) => r.requestId === submitted.fal_request_id)!;
  expect(request.cancelled).toBe(true);
  expect((await system.api('GET', `/v1/avatars/${avatar.id}`)).body).toMatchObject({
    status: 'draft',
    error: null,
  });
  expect((await system.api('POST', `/v1/trainings/${training.id}/cancel`)).status).toBe(409);
  const { rows } = await system.db.query(
    "SELECT from_status, to_status FROM transitions WHERE row_id = $1 AND to_status = 'cancelled'",
    [training.id],
  );
  expect(rows).toEqual([{ from_status: 'submitted', to_status: 'cancelled' }]);
});
