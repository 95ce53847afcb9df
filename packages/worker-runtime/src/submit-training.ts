import { UnrecoverableError } from 'bullmq';
import { buildTrainingInput, submitTrainingJob, type TrainingConfig, type TrainingType } from '@aisha/shared';
import { submitSubject } from './report-final-failure';
import { submitRequest } from './submit-request';
import type { JobHandler } from './worker-context';

/**
 * `submit-training` for the portrait and pro workers: the preset, overrides and trigger phrase become the input of
 * the endpoint the training type runs on (portrait trainer, or PRO_TRAINER_ENDPOINT for style avatars).
 */
export function submitTraining(expected: TrainingType, training: TrainingConfig): JobHandler {
  return (job, token, ctx) =>
    submitRequest(job, token, ctx, submitSubject(job)!, () => {
      const data = submitTrainingJob.parse(job.data);
      if (data.trainingType !== expected) {
        // A job on the wrong queue is a producer's bug: no retry fixes it.
        throw new UnrecoverableError(
          `${ctx.queueName} trains ${expected} avatars, got a ${data.trainingType} training: check the producer's queue`,
        );
      }
      return buildTrainingInput(
        {
          trainingType: data.trainingType,
          preset: data.preset,
          imagesDataUrl: data.imagesDataUrl,
          triggerPhrase: data.triggerPhrase,
          overrides: data.overrides,
          comment: `avatar ${data.avatarId} training ${data.trainingId}`,
        },
        training.presets,
        training.proTrainerEndpoint,
      );
    });
}
