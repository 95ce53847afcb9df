import { z } from 'zod';
import {
  aspectRatio,
  finetuneStrength,
  outputFormat,
  falEndpointId,
  falImage,
  ultraFinetunedInput,
} from './fal/endpoints';
import { avatarModel } from './fal/model-result';
import { trainingType } from './fal/build-input';
import { presetName } from './presets';

/** The gateway's `/v1` request and response bodies. They are also the source of the OpenAPI document. */

export const PROMPT_MAX = 2000;

// Control characters are stripped (newlines and tabs become spaces) before the length is judged.
export const prompt = z
  .string()
  .transform((raw) =>
    raw
      .replace(/[\t\n\r]/g, ' ')
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, '')
      .trim(),
  )
  .superRefine((value, ctx) => {
    if (value.length < 1 || value.length > PROMPT_MAX) {
      ctx.addIssue({
        code: 'custom',
        message: `prompt must be 1–${PROMPT_MAX} characters after removing control characters, got ${value.length}`,
      });
    }
  });

export const AVATAR_STATUSES = ['draft', 'training', 'ready', 'failed'] as const;
export const TRAINING_STATUSES = [
  'queued',
  'submitted',
  'in_progress',
  'completed',
  'failed',
  'cancelled',
] as const;
export const GENERATION_STATUSES = ['queued', 'submitted', 'completed', 'failed', 'cancelled'] as const;
export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const;

export const createAvatarBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  training_type: trainingType,
  images_data_url: z.url().optional(),
});
export type CreateAvatarBody = z.infer<typeof createAvatarBody>;

export const avatar = z.object({
  id: z.string(),
  name: z.string(),
  training_type: trainingType,
  status: z.enum(AVATAR_STATUSES),
  images_data_url: z.string().nullable(),
  model: avatarModel.nullable(),
  error: z.string().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
});
export type Avatar = z.infer<typeof avatar>;

export const createTrainingBody = z.strictObject({
  preset: presetName.default('balanced'),
  trigger_phrase: z.string().trim().min(1).max(200).optional(),
  images_data_url: z.url().optional(),
  overrides: z.record(z.string(), z.unknown()).optional(),
});
export type CreateTrainingBody = z.infer<typeof createTrainingBody>;

export const training = z.object({
  id: z.string(),
  avatar_id: z.string(),
  status: z.enum(TRAINING_STATUSES),
  preset: presetName,
  fal_request_id: z.string().nullable(),
  fal_endpoint: falEndpointId.nullable(),
  result: avatarModel.nullable(),
  error: z.string().nullable(),
  progress: z.number().nullable(),
  attempts: z.number().int(),
  created_at: z.iso.datetime(),
  submitted_at: z.iso.datetime().nullable(),
  finished_at: z.iso.datetime().nullable(),
});
export type Training = z.infer<typeof training>;

export const createGenerationBody = z.strictObject({
  avatar_id: z.string().min(1),
  prompt,
  aspect_ratio: aspectRatio.optional(),
  // The endpoint's own bound (1–4), not a copy of it.
  num_images: ultraFinetunedInput.shape.num_images,
  finetune_strength: finetuneStrength.optional(),
  output_format: outputFormat.optional(),
  seed: z
    .number()
    .int()
    .nonnegative()
    .max(2 ** 32 - 1)
    .optional(),
});
export type CreateGenerationBody = z.infer<typeof createGenerationBody>;

export const generation = z.object({
  id: z.string(),
  avatar_id: z.string(),
  status: z.enum(GENERATION_STATUSES),
  prompt: z.string(),
  fal_request_id: z.string().nullable(),
  fal_endpoint: falEndpointId.nullable(),
  images: z.array(falImage),
  error: z.string().nullable(),
  attempts: z.number().int(),
  created_at: z.iso.datetime(),
  submitted_at: z.iso.datetime().nullable(),
  finished_at: z.iso.datetime().nullable(),
});
export type Generation = z.infer<typeof generation>;
