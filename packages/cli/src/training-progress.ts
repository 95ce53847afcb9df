import type { Training } from '@aisha/shared';

/**
 * The training's path as the demo shows it. fal reports a percentage only to status polls, which the sweep makes
 * about once a minute (POLL_TRAINING_AFTER_S), so the bar moves with the status and fills within `in_progress` by
 * the percentage when there is one.
 */
export const TRAINING_STEPS = ['queued', 'submitted', 'in_progress', 'completed'] as const;

export interface TrainingProgress {
  /** 0 to TRAINING_STEPS.length - 1: the bar's value. */
  value: number;
  /** `step 3/4 in_progress 40 %`. */
  label: string;
}

export function trainingProgress(training: Pick<Training, 'status' | 'progress'>): TrainingProgress {
  const index = TRAINING_STEPS.indexOf(training.status as (typeof TRAINING_STEPS)[number]);
  if (index < 0) return { value: 0, label: training.status };
  const percent = training.status === 'in_progress' && training.progress !== null ? training.progress : null;
  const value = percent === null ? index : index + Math.min(100, Math.max(0, percent)) / 100;
  const label = `step ${index + 1}/${TRAINING_STEPS.length} ${training.status}${
    percent === null ? '' : ` ${Math.round(percent)} %`
  }`;
  return { value, label };
}
