import { trainingProgress } from '@aisha/cli';

describe('the demo training progress', () => {
  it('moves with the status, before fal reports any percentage', () => {
    const seen = (['queued', 'submitted', 'in_progress', 'completed'] as const).map((status) =>
      trainingProgress({ status, progress: null }),
    );
    expect(seen.map((p) => p.value)).toEqual([0, 1, 2, 3]);
    expect(seen.map((p) => p.label)).toEqual([
      'step 1/4 queued',
      'step 2/4 submitted',
      'step 3/4 in_progress',
      'step 4/4 completed',
    ]);
  });

  it('fills the in_progress step by the percentage a poll reported', () => {
    expect(trainingProgress({ status: 'in_progress', progress: 40 })).toEqual({
      value: 2.4,
      label: 'step 3/4 in_progress 40 %',
    });
  });

  it('names a status off the happy path', () => {
    expect(trainingProgress({ status: 'failed', progress: null }).label).toBe('failed');
  });
});
