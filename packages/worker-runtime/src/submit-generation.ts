import { buildGenerationInput, submitGenerationJob } from '@aisha/shared';
import { submitSubject } from './report-final-failure';
import { submitRequest } from './submit-request';
import type { JobHandler } from './worker-context';

/**
 * `submit-generation`: the avatar's model picks the endpoint (a finetune_id → FLUX1.1 [pro] ultra fine-tuned, a LoRA
 * file → FLUX LoRA with `loras: [{path, scale}]`), the request's options become its input.
 */
export const submitGeneration: JobHandler = (job, token, ctx) =>
  submitRequest(job, token, ctx, submitSubject(job)!, () => {
    const data = submitGenerationJob.parse(job.data);
    return buildGenerationInput(data.model, data.request, data.trainingType);
  });
