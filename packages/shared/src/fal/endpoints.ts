import { z } from 'zod';

/**
 * The fal endpoints we call, with their real input and output schemas (see shared/fal-contract.md).
 * Inputs are strict: a field fal does not know (the seed guide's `images_data_url` on the pro trainer,
 * `enable_safety_checker` on ultra) is a bug on our side, caught before it costs a request.
 */

/**
 * Limits not in fal-contract.md: *unverified* guesses (generous, to catch our own mistakes, not to mirror fal),
 * kept in one place so that checking fal's model pages means editing only this block. Fields the contract does
 * not list carry an `unverified` comment where they are declared.
 */
export const UNVERIFIED_LIMITS = {
  /** Portrait and fast LoRA trainers' `steps`. */
  maxTrainingSteps: 10_000,
  /** Pro trainer's `iterations`. */
  minIterations: 100,
  maxIterations: 10_000,
  maxLearningRate: 1,
  maxTriggerPhraseLength: 200,
  maxNumImages: 4,
  maxLoraScale: 4,
  maxGuidanceScale: 35,
  maxInferenceSteps: 50,
  /** Each side of a custom flux-lora `image_size`; 14142² is about 200 MP. */
  minImageSide: 64,
  maxImageSide: 14_142,
} as const;

// fal's documented defaults are metadata (`.meta({ default })`, shown in JSON Schema), never zod defaults:
// our builders send every value explicitly, and a parse must not add fields the caller did not send.

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
/** The pixels of each named flux-lora `image_size` (fal's model page; *unverified*: not in fal-contract.md). */
export const IMAGE_SIZE_PIXELS = {
  square_hd: { width: 1024, height: 1024 },
  square: { width: 512, height: 512 },
  portrait_4_3: { width: 768, height: 1024 },
  portrait_16_9: { width: 576, height: 1024 },
  landscape_4_3: { width: 1024, height: 768 },
  landscape_16_9: { width: 1024, height: 576 },
} as const satisfies Record<string, { width: number; height: number }>;
export type ImageSizePreset = keyof typeof IMAGE_SIZE_PIXELS;
export const IMAGE_SIZE_PRESETS = Object.keys(IMAGE_SIZE_PIXELS) as [ImageSizePreset, ...ImageSizePreset[]];
export const outputFormat = z.enum(['jpeg', 'png']);

const zipUrl = z.url({ protocol: /^https?$/ });

export const portraitTrainerInput = z.strictObject({
  images_data_url: zipUrl,
  trigger_phrase: z.string().min(1).max(UNVERIFIED_LIMITS.maxTriggerPhraseLength).optional(),
  steps: z.number().int().min(1).max(UNVERIFIED_LIMITS.maxTrainingSteps).optional().meta({ default: 2500 }),
  learning_rate: z
    .number()
    .positive()
    .max(UNVERIFIED_LIMITS.maxLearningRate)
    .optional()
    .meta({ default: 0.00009 }),
  multiresolution_training: z.boolean().optional().meta({ default: true }),
  subject_crop: z.boolean().optional().meta({ default: true }),
  create_masks: z.boolean().optional(),
  data_archive_format: z.string().optional(),
  resume_from_checkpoint: z.string().optional(),
});

export const loraTrainerOutput = z.object({
  diffusers_lora_file: falFile,
  config_file: falFile,
  debug_preprocessed_output: falFile.optional(), // unverified: not in fal-contract.md
});

export const proTrainerInput = z.strictObject({
  data_url: zipUrl,
  finetune_comment: z.string().min(1),
  mode: z.enum(['character', 'product', 'style', 'general']).optional().meta({ default: 'character' }),
  iterations: z
    .number()
    .int()
    .min(UNVERIFIED_LIMITS.minIterations)
    .max(UNVERIFIED_LIMITS.maxIterations)
    .optional()
    .meta({ default: 300 }),
  // fal's default depends on finetune_type (1e-5 full, 1e-4 lora), so none is recorded here.
  learning_rate: z.number().positive().max(UNVERIFIED_LIMITS.maxLearningRate).optional(),
  priority: z.enum(['speed', 'quality', 'high_res_only']).optional(),
  captioning: z.boolean().optional(),
  trigger_word: z.string().min(1).optional().meta({ default: 'TOK' }),
  lora_rank: z
    .union([z.literal(16), z.literal(32)])
    .optional()
    .meta({ default: 32 }),
  finetune_type: z.enum(['full', 'lora']).optional().meta({ default: 'full' }),
});

export const proTrainerOutput = z.object({ finetune_id: z.string().min(1) });

// unverified: fal-contract.md names this trainer but not its input; these fields are from fal's model page.
export const fastLoraTrainerInput = z.strictObject({
  images_data_url: zipUrl,
  trigger_word: z.string().min(1).optional(),
  steps: z.number().int().min(1).max(UNVERIFIED_LIMITS.maxTrainingSteps).optional(),
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
  aspect_ratio: aspectRatio.optional().meta({ default: '16:9' }),
  num_images: z.number().int().min(1).max(UNVERIFIED_LIMITS.maxNumImages).optional(),
  output_format: outputFormat.optional(),
  safety_tolerance: z.enum(['1', '2', '3', '4', '5', '6']).optional().meta({ default: '2' }),
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
    width: z.number().int().min(UNVERIFIED_LIMITS.minImageSide).max(UNVERIFIED_LIMITS.maxImageSide),
    height: z.number().int().min(UNVERIFIED_LIMITS.minImageSide).max(UNVERIFIED_LIMITS.maxImageSide),
  }),
]);

export const fluxLoraInput = z.strictObject({
  prompt: z.string().min(1),
  loras: z
    .array(
      z.strictObject({
        path: z.string().min(1),
        scale: z.number().min(0).max(UNVERIFIED_LIMITS.maxLoraScale).optional().meta({ default: 1 }),
      }),
    )
    .optional(),
  image_size: imageSize.optional(),
  num_images: z.number().int().min(1).max(UNVERIFIED_LIMITS.maxNumImages).optional(),
  num_inference_steps: z
    .number()
    .int()
    .min(1)
    .max(UNVERIFIED_LIMITS.maxInferenceSteps)
    .optional()
    .meta({ default: 28 }),
  guidance_scale: z.number().min(0).max(UNVERIFIED_LIMITS.maxGuidanceScale).optional().meta({ default: 3.5 }),
  seed: z.number().int().nonnegative().optional(),
  enable_safety_checker: z.boolean().optional(),
  output_format: outputFormat.optional(),
  acceleration: z.enum(['none', 'regular']).optional(), // unverified: not in fal-contract.md
  sync_mode: z.boolean().optional(), // unverified for flux-lora: the contract lists it for ultra only
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
