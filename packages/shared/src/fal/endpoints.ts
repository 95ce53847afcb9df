import { z } from 'zod';

/**
 * The fal endpoints we call, with their real input and output schemas (see shared/fal-contract.md).
 * Inputs are strict: a field fal does not know (the seed guide's `images_data_url` on the pro trainer,
 * `enable_safety_checker` on ultra) is a bug on our side, caught before it costs a request.
 */

export const falFile = z.object({
  url: z.url(),
  content_type: z.string().optional(),
  file_name: z.string().optional(),
  file_size: z.number().int().nonnegative().optional(),
});

export const falImage = z.object({
  url: z.url(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  content_type: z.string().optional(),
});

export const ASPECT_RATIOS = ['21:9', '16:9', '4:3', '3:2', '1:1', '2:3', '3:4', '9:16', '9:21'] as const;
export const aspectRatio = z.enum(ASPECT_RATIOS);
export const IMAGE_SIZE_PRESETS = [
  'square_hd',
  'square',
  'portrait_4_3',
  'portrait_16_9',
  'landscape_4_3',
  'landscape_16_9',
] as const;
export const outputFormat = z.enum(['jpeg', 'png']);

const zipUrl = z.url({ protocol: /^https?$/ });

export const portraitTrainerInput = z.strictObject({
  images_data_url: zipUrl,
  trigger_phrase: z.string().min(1).max(200).optional(),
  steps: z.number().int().min(1).max(10_000).optional(),
  learning_rate: z.number().positive().max(1).optional(),
  multiresolution_training: z.boolean().optional(),
  subject_crop: z.boolean().optional(),
  create_masks: z.boolean().optional(),
  data_archive_format: z.string().optional(),
  resume_from_checkpoint: z.string().optional(),
});

export const loraTrainerOutput = z.object({
  diffusers_lora_file: falFile,
  config_file: falFile,
  debug_preprocessed_output: falFile.optional(),
});

export const proTrainerInput = z.strictObject({
  data_url: zipUrl,
  finetune_comment: z.string().min(1),
  mode: z.enum(['character', 'product', 'style', 'general']).optional(),
  iterations: z.number().int().min(100).max(10_000).optional(),
  learning_rate: z.number().positive().max(1).optional(),
  priority: z.enum(['speed', 'quality', 'high_res_only']).optional(),
  captioning: z.boolean().optional(),
  trigger_word: z.string().min(1).optional(),
  lora_rank: z.union([z.literal(16), z.literal(32)]).optional(),
  finetune_type: z.enum(['full', 'lora']).optional(),
});

export const proTrainerOutput = z.object({ finetune_id: z.string().min(1) });

export const fastLoraTrainerInput = z.strictObject({
  images_data_url: zipUrl,
  trigger_word: z.string().min(1).optional(),
  steps: z.number().int().min(1).max(10_000).optional(),
  create_masks: z.boolean().optional(),
  is_style: z.boolean().optional(),
  is_input_format_already_preprocessed: z.boolean().optional(),
  data_archive_format: z.string().optional(),
});

export const imagesOutput = z.object({
  images: z.array(falImage),
  seed: z.number().int(),
  prompt: z.string().optional(),
  has_nsfw_concepts: z.array(z.boolean()).optional(),
  timings: z.unknown().optional(),
});

// 0–2 is Black Forest Labs' own limit for finetune_strength; fal documents no range (fal-contract.md).
export const finetuneStrength = z.number().min(0).max(2);

export const ultraFinetunedInput = z.strictObject({
  prompt: z.string().min(1),
  finetune_id: z.string().min(1),
  finetune_strength: finetuneStrength,
  aspect_ratio: aspectRatio.optional(),
  num_images: z.number().int().min(1).max(4).optional(),
  output_format: outputFormat.optional(),
  safety_tolerance: z.enum(['1', '2', '3', '4', '5', '6']).optional(),
  seed: z.number().int().nonnegative().optional(),
  raw: z.boolean().optional(),
  image_url: z.url().optional(),
  image_prompt_strength: z.number().min(0).max(1).optional(),
  enhance_prompt: z.boolean().optional(),
  sync_mode: z.boolean().optional(),
});

export const imageSize = z.union([
  z.enum(IMAGE_SIZE_PRESETS),
  z.strictObject({
    width: z.number().int().min(64).max(14_142),
    height: z.number().int().min(64).max(14_142),
  }),
]);

export const fluxLoraInput = z.strictObject({
  prompt: z.string().min(1),
  loras: z
    .array(z.strictObject({ path: z.string().min(1), scale: z.number().min(0).max(4).optional() }))
    .optional(),
  image_size: imageSize.optional(),
  num_images: z.number().int().min(1).max(4).optional(),
  num_inference_steps: z.number().int().min(1).max(50).optional(),
  guidance_scale: z.number().min(0).max(35).optional(),
  seed: z.number().int().nonnegative().optional(),
  enable_safety_checker: z.boolean().optional(),
  output_format: outputFormat.optional(),
  acceleration: z.enum(['none', 'regular']).optional(),
  sync_mode: z.boolean().optional(),
});

export const FAL_ENDPOINTS = {
  'fal-ai/flux-lora-portrait-trainer': {
    kind: 'training',
    input: portraitTrainerInput,
    output: loraTrainerOutput,
  },
  'fal-ai/flux-pro-trainer': { kind: 'training', input: proTrainerInput, output: proTrainerOutput },
  'fal-ai/flux-lora-fast-training': {
    kind: 'training',
    input: fastLoraTrainerInput,
    output: loraTrainerOutput,
  },
  'fal-ai/flux-pro/v1.1-ultra-finetuned': {
    kind: 'generation',
    input: ultraFinetunedInput,
    output: imagesOutput,
  },
  'fal-ai/flux-lora': { kind: 'generation', input: fluxLoraInput, output: imagesOutput },
} as const satisfies Record<string, { kind: 'training' | 'generation'; input: z.ZodType; output: z.ZodType }>;

export type FalEndpointId = keyof typeof FAL_ENDPOINTS;
export const FAL_ENDPOINT_IDS = Object.keys(FAL_ENDPOINTS) as FalEndpointId[];
export const falEndpointId = z.enum(FAL_ENDPOINT_IDS as [FalEndpointId, ...FalEndpointId[]]);
export type FalInput<E extends FalEndpointId> = z.infer<(typeof FAL_ENDPOINTS)[E]['input']>;
export type FalOutput<E extends FalEndpointId> = z.infer<(typeof FAL_ENDPOINTS)[E]['output']>;
export type FalImage = z.infer<typeof falImage>;
export type AspectRatio = z.infer<typeof aspectRatio>;

/**
 * Status and result paths carry only the app's `owner/alias` (the client strips sub-paths):
 * `fal-ai/flux-pro/v1.1-ultra-finetuned` polls as `fal-ai/flux-pro`.
 */
export function falAppPath(endpoint: string): string {
  return endpoint.split('/').slice(0, 2).join('/');
}
