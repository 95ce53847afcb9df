import { z } from 'zod';
import { jsonVariable } from './config';
import { fastLoraTrainerInput, portraitTrainerInput, proTrainerInput } from './fal/endpoints';

/**
 * Training presets. Values follow the seed guide; fal's own defaults differ (portrait: 2500 steps, lr 0.00009),
 * so every value is sent explicitly. The keys `portrait` and `general` are the seed's, so operators can keep
 * their `FAL_PRESET_*` variables; `lora` tunes `fal-ai/flux-lora-fast-training`.
 */

export const PRESET_NAMES = ['fast', 'balanced', 'quality'] as const;
export const presetName = z.enum(PRESET_NAMES);
export type PresetName = z.infer<typeof presetName>;

const portraitSettings = portraitTrainerInput
  .pick({
    steps: true,
    learning_rate: true,
    multiresolution_training: true,
    subject_crop: true,
    create_masks: true,
  })
  .required();
const generalSettings = proTrainerInput
  .pick({ iterations: true, learning_rate: true, captioning: true, priority: true })
  .required();
const loraSettings = fastLoraTrainerInput.pick({ steps: true, create_masks: true }).required();

export const presetSettings = z.strictObject({
  portrait: portraitSettings,
  general: generalSettings,
  lora: loraSettings,
});
export type PresetSettings = z.infer<typeof presetSettings>;
export type Presets = Record<PresetName, PresetSettings>;

/** The shape of one `FAL_PRESET_*` variable: any subset of a preset's settings. */
export const presetOverride = z.strictObject({
  portrait: portraitSettings.partial().strict().optional(),
  general: generalSettings.partial().strict().optional(),
  lora: loraSettings.partial().strict().optional(),
});
export type PresetOverride = z.infer<typeof presetOverride>;

function preset(steps: number, iterations: number): PresetSettings {
  return {
    portrait: {
      steps,
      learning_rate: 0.0002,
      multiresolution_training: true,
      subject_crop: true,
      create_masks: true,
    },
    general: { iterations, learning_rate: 1e-4, captioning: true, priority: 'quality' },
    lora: { steps, create_masks: true },
  };
}

export const DEFAULT_PRESETS: Presets = {
  fast: preset(500, 200),
  balanced: preset(1000, 500),
  quality: preset(2500, 1000),
};

export function applyPresetOverrides(
  base: Presets,
  overrides: Partial<Record<PresetName, PresetOverride>>,
): Presets {
  const merged = structuredClone(base);
  for (const name of PRESET_NAMES) {
    const override = overrides[name];
    if (!override) continue;
    merged[name] = {
      portrait: { ...merged[name].portrait, ...override.portrait },
      general: { ...merged[name].general, ...override.general },
      lora: { ...merged[name].lora, ...override.lora },
    };
  }
  return merged;
}

const presetJson = jsonVariable(presetOverride);

export const PRO_TRAINER_ENDPOINTS = ['fal-ai/flux-pro-trainer', 'fal-ai/flux-lora-fast-training'] as const;
export type ProTrainerEndpoint = (typeof PRO_TRAINER_ENDPOINTS)[number];

/** Config section for whoever builds training inputs: the presets with overrides applied, and the pro trainer. */
export const trainingEnv = z
  .object({
    PRO_TRAINER_ENDPOINT: z.enum(PRO_TRAINER_ENDPOINTS).default('fal-ai/flux-pro-trainer'),
    FAL_PRESET_FAST: presetJson.optional(),
    FAL_PRESET_BALANCED: presetJson.optional(),
    FAL_PRESET_QUALITY: presetJson.optional(),
  })
  .transform((env) => ({
    proTrainerEndpoint: env.PRO_TRAINER_ENDPOINT,
    presets: applyPresetOverrides(DEFAULT_PRESETS, {
      fast: env.FAL_PRESET_FAST,
      balanced: env.FAL_PRESET_BALANCED,
      quality: env.FAL_PRESET_QUALITY,
    }),
  }));
export type TrainingConfig = z.output<typeof trainingEnv>;
