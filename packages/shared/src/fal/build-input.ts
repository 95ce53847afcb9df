import { z } from 'zod';
import {
  type AspectRatio,
  FAL_ENDPOINTS,
  type FalEndpointId,
  fluxLoraInput,
  ultraFinetunedInput,
} from './endpoints';
import type { AvatarModel } from './model-result';
import type { generationParams } from '../queues';
import type { PresetName, Presets, ProTrainerEndpoint } from '../presets';

export const TRAINING_TYPES = ['portrait', 'style'] as const;
export const trainingType = z.enum(TRAINING_TYPES);
export type TrainingType = z.infer<typeof trainingType>;

export interface TrainingRequest {
  trainingType: TrainingType;
  preset: PresetName;
  /** URL of a zip of images (fal storage or any https URL). */
  imagesDataUrl: string;
  triggerPhrase?: string | undefined;
  /** Per-request fal input fields; they win over the preset and are validated with it. */
  overrides?: Record<string, unknown> | undefined;
  /** A human-readable note; the pro trainer requires one (`finetune_comment`). */
  comment: string;
}

export interface FalRequestSpec {
  endpoint: FalEndpointId;
  input: Record<string, unknown>;
}

/** The endpoint a training of this type runs on. */
export function trainingEndpoint(type: TrainingType, proTrainer: ProTrainerEndpoint): FalEndpointId {
  return type === 'portrait' ? 'fal-ai/flux-lora-portrait-trainer' : proTrainer;
}

/**
 * Builds a valid fal input for a training. Throws a ZodError naming the field when the preset plus overrides
 * do not make a valid input for the endpoint.
 */
export function buildTrainingInput(
  request: TrainingRequest,
  presets: Presets,
  proTrainer: ProTrainerEndpoint,
): FalRequestSpec {
  const endpoint = trainingEndpoint(request.trainingType, proTrainer);
  const settings = presets[request.preset];
  const trigger = request.triggerPhrase;
  let base: Record<string, unknown>;
  switch (endpoint) {
    case 'fal-ai/flux-lora-portrait-trainer':
      base = { images_data_url: request.imagesDataUrl, ...settings.portrait, trigger_phrase: trigger };
      break;
    case 'fal-ai/flux-pro-trainer':
      base = {
        data_url: request.imagesDataUrl,
        finetune_comment: request.comment,
        mode: 'style',
        ...settings.general,
        trigger_word: trigger,
      };
      break;
    default:
      base = {
        images_data_url: request.imagesDataUrl,
        ...settings.lora,
        is_style: true,
        trigger_word: trigger,
      };
  }
  const input = FAL_ENDPOINTS[endpoint].input.parse(dropUndefined({ ...base, ...request.overrides }));
  return { endpoint, input };
}

/** What a generation job asks for: the API's request without the avatar (one schema, in queues.ts). */
export type GenerationRequest = z.infer<typeof generationParams>;

/**
 * Used when a request gives no `finetune_strength`, by the avatar's kind (design.md's recommended ranges).
 * Portrait 1.0: the middle of 0.8–1.2, a LoRA's natural scale, so a face neither washes out nor overcooks.
 * Style 1.1: the seed's ultra default, inside 1.0–1.5; a style is trained on the pro trainer (ultra fine-tuned).
 */
export const DEFAULT_FINETUNE_STRENGTH: Record<TrainingType, number> = { portrait: 1.0, style: 1.1 };
// flux-lora takes sizes, not ratios: named sizes where fal has one, about one megapixel otherwise.
const IMAGE_SIZE_FOR_RATIO: Record<AspectRatio, z.infer<typeof fluxLoraInput>['image_size']> = {
  '1:1': 'square_hd',
  '4:3': 'landscape_4_3',
  '16:9': 'landscape_16_9',
  '3:4': 'portrait_4_3',
  '9:16': 'portrait_16_9',
  '3:2': { width: 1248, height: 832 },
  '2:3': { width: 832, height: 1248 },
  '21:9': { width: 1568, height: 672 },
  '9:21': { width: 672, height: 1568 },
};

/**
 * A finetune id generates on FLUX1.1 [pro] ultra fine-tuned; a LoRA file on FLUX LoRA. `avatarKind` gives the
 * default strength: a style avatar trained on the fast LoRA trainer has a LoRA yet wants a style's strength.
 */
export function buildGenerationInput(
  model: AvatarModel,
  request: GenerationRequest,
  avatarKind: TrainingType,
): FalRequestSpec {
  const strength = request.finetune_strength ?? DEFAULT_FINETUNE_STRENGTH[avatarKind];
  const common = {
    prompt: request.prompt,
    num_images: request.num_images ?? 1,
    output_format: request.output_format ?? 'jpeg',
    seed: request.seed,
  };
  if (model.kind === 'finetune') {
    const input = ultraFinetunedInput.parse(
      dropUndefined({
        ...common,
        finetune_id: model.id,
        finetune_strength: strength,
        aspect_ratio: request.aspect_ratio ?? '1:1',
        safety_tolerance: '2',
      }),
    );
    return { endpoint: 'fal-ai/flux-pro/v1.1-ultra-finetuned', input };
  }
  const input = fluxLoraInput.parse(
    dropUndefined({
      ...common,
      loras: [{ path: model.url, scale: strength }],
      image_size: IMAGE_SIZE_FOR_RATIO[request.aspect_ratio ?? '1:1'],
      enable_safety_checker: true,
    }),
  );
  return { endpoint: 'fal-ai/flux-lora', input };
}

function dropUndefined(input: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}
