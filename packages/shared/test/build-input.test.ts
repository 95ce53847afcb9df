import { ZodError } from 'zod';
import {
  DEFAULT_FINETUNE_STRENGTH,
  DEFAULT_PRESETS,
  buildGenerationInput,
  buildTrainingInput,
  createGenerationBody,
  submitGenerationJob,
  type TrainingRequest,
} from '@aisha/shared';

const zip = 'https://v3.fal.media/files/lion/photos.zip';
const request = (over: Partial<TrainingRequest> = {}): TrainingRequest => ({
  trainingType: 'portrait',
  preset: 'fast',
  imagesDataUrl: zip,
  triggerPhrase: 'TOK_avatar123',
  comment: 'avatar 123',
  ...over,
});

describe('presets', () => {
  it("carry the seed guide's values", () => {
    expect(DEFAULT_PRESETS.fast.portrait.steps).toBe(500);
    expect(DEFAULT_PRESETS.balanced.portrait.steps).toBe(1000);
    expect(DEFAULT_PRESETS.quality.portrait.steps).toBe(2500);
    expect(DEFAULT_PRESETS.fast.general.iterations).toBe(200);
    expect(DEFAULT_PRESETS.balanced.general.iterations).toBe(500);
    expect(DEFAULT_PRESETS.quality.general.iterations).toBe(1000);
    expect(DEFAULT_PRESETS.balanced.portrait).toEqual({
      steps: 1000,
      learning_rate: 0.0002,
      multiresolution_training: true,
      subject_crop: true,
      create_masks: true,
    });
    expect(DEFAULT_PRESETS.balanced.general).toMatchObject({
      learning_rate: 1e-4,
      captioning: true,
      priority: 'quality',
    });
  });
});

describe('training inputs', () => {
  it('builds a portrait trainer input with every preset value set explicitly', () => {
    const spec = buildTrainingInput(request(), DEFAULT_PRESETS, 'fal-ai/flux-pro-trainer');
    expect(spec).toEqual({
      endpoint: 'fal-ai/flux-lora-portrait-trainer',
      input: {
        images_data_url: zip,
        trigger_phrase: 'TOK_avatar123',
        steps: 500,
        learning_rate: 0.0002,
        multiresolution_training: true,
        subject_crop: true,
        create_masks: true,
      },
    });
  });

  it("builds a pro trainer input with fal's real field names", () => {
    const spec = buildTrainingInput(
      request({ trainingType: 'style', preset: 'balanced' }),
      DEFAULT_PRESETS,
      'fal-ai/flux-pro-trainer',
    );
    expect(spec.endpoint).toBe('fal-ai/flux-pro-trainer');
    expect(spec.input).toEqual({
      data_url: zip,
      finetune_comment: 'avatar 123',
      mode: 'style',
      iterations: 500,
      learning_rate: 1e-4,
      captioning: true,
      priority: 'quality',
      trigger_word: 'TOK_avatar123',
    });
  });

  it('trains style avatars on the fast LoRA trainer when configured', () => {
    const spec = buildTrainingInput(
      request({ trainingType: 'style' }),
      DEFAULT_PRESETS,
      'fal-ai/flux-lora-fast-training',
    );
    expect(spec).toEqual({
      endpoint: 'fal-ai/flux-lora-fast-training',
      input: {
        images_data_url: zip,
        steps: 500,
        create_masks: true,
        is_style: true,
        trigger_word: 'TOK_avatar123',
      },
    });
  });

  it('lets per-request overrides win, and validates them', () => {
    const spec = buildTrainingInput(
      request({ overrides: { steps: 1500 } }),
      DEFAULT_PRESETS,
      'fal-ai/flux-pro-trainer',
    );
    expect(spec.input.steps).toBe(1500);
  });

  it('refuses an override out of range, naming the field', () => {
    expect(
      issuesOf(() =>
        buildTrainingInput(request({ overrides: { steps: -1 } }), DEFAULT_PRESETS, 'fal-ai/flux-pro-trainer'),
      ),
    ).toEqual([expect.objectContaining({ code: 'too_small', path: ['steps'] })]);
    const style = request({ trainingType: 'style', overrides: { iterations: 10 } });
    expect(issuesOf(() => buildTrainingInput(style, DEFAULT_PRESETS, 'fal-ai/flux-pro-trainer'))).toEqual([
      expect.objectContaining({ code: 'too_small', path: ['iterations'] }),
    ]);
  });

  it("refuses an override the endpoint does not know (the pro trainer's iterations on a portrait)", () => {
    const portrait = request({ overrides: { iterations: 500 } });
    expect(issuesOf(() => buildTrainingInput(portrait, DEFAULT_PRESETS, 'fal-ai/flux-pro-trainer'))).toEqual([
      expect.objectContaining({ code: 'unrecognized_keys', keys: ['iterations'] }),
    ]);
  });
});

/** The issues of the ZodError `build` throws; fails the test if it throws anything else, or nothing. */
function issuesOf(build: () => unknown): ZodError['issues'] {
  try {
    build();
  } catch (err) {
    expect(err).toBeInstanceOf(ZodError);
    return (err as ZodError).issues;
  }
  throw new Error('expected a ZodError, but the input was accepted');
}

describe('generation inputs', () => {
  it('routes a finetune avatar to FLUX1.1 [pro] ultra fine-tuned', () => {
    const spec = buildGenerationInput(
      { kind: 'finetune', id: 'ft-42' },
      { prompt: 'TOK in a suit' },
      'style',
    );
    expect(spec).toEqual({
      endpoint: 'fal-ai/flux-pro/v1.1-ultra-finetuned',
      input: {
        prompt: 'TOK in a suit',
        finetune_id: 'ft-42',
        finetune_strength: 1.1,
        aspect_ratio: '1:1',
        num_images: 1,
        output_format: 'jpeg',
        safety_tolerance: '2',
      },
    });
  });

  it('routes a LoRA avatar to FLUX LoRA, mapping the aspect ratio to an image size', () => {
    const lora = 'https://v3.fal.media/files/a/lora.safetensors';
    const spec = buildGenerationInput(
      { kind: 'lora', url: lora },
      { prompt: 'TOK portrait', aspect_ratio: '9:16', finetune_strength: 0.9, seed: 3 },
      'portrait',
    );
    expect(spec.endpoint).toBe('fal-ai/flux-lora');
    expect(spec.input).toMatchObject({
      loras: [{ path: lora, scale: 0.9 }],
      image_size: 'portrait_16_9',
      seed: 3,
      enable_safety_checker: true,
    });
    expect(spec.input).not.toHaveProperty('aspect_ratio');
    const wide = buildGenerationInput(
      { kind: 'lora', url: lora },
      { prompt: 'x', aspect_ratio: '21:9' },
      'portrait',
    );
    expect(wide.input.image_size).toEqual({ width: 1568, height: 672 });
  });

  it("defaults finetune_strength by the avatar's kind, not by its model's", () => {
    const lora = { kind: 'lora', url: 'https://v3.fal.media/files/a/lora.safetensors' } as const;
    const scale = (kind: 'portrait' | 'style') =>
      (buildGenerationInput(lora, { prompt: 'x' }, kind).input.loras as Array<{ scale: number }>)[0]!.scale;
    expect(scale('portrait')).toBe(DEFAULT_FINETUNE_STRENGTH.portrait);
    // A style avatar trained on the fast LoRA trainer: a LoRA model, a style's strength.
    expect(scale('style')).toBe(DEFAULT_FINETUNE_STRENGTH.style);
    expect(DEFAULT_FINETUNE_STRENGTH.portrait).toBeGreaterThanOrEqual(0.8);
    expect(DEFAULT_FINETUNE_STRENGTH.portrait).toBeLessThanOrEqual(1.2);
    expect(DEFAULT_FINETUNE_STRENGTH.style).toBeGreaterThanOrEqual(1.0);
    expect(DEFAULT_FINETUNE_STRENGTH.style).toBeLessThanOrEqual(1.5);
  });

  it('a generation job carries the API request: the same bounds, sanitised prompt and all', () => {
    const job = (request: unknown) =>
      submitGenerationJob.safeParse({
        generationId: 'g',
        tenantId: 't',
        trainingType: 'portrait',
        model: { kind: 'finetune', id: 'ft' },
        request,
      });
    expect(job({ prompt: 'x', seed: 2 ** 32 }).success).toBe(false);
    expect(job({ prompt: 'x'.repeat(2001) }).success).toBe(false);
    expect(job({ prompt: 'x', finetune_strength: 2.5 }).success).toBe(false);
    expect(job({ prompt: 'x', num_images: 5 }).success).toBe(false);
    expect(job({ prompt: 'x', num_images: 4, seed: 7 }).success).toBe(true);
  });

  it('refuses finetune_strength outside 0–2', () => {
    expect(() =>
      buildGenerationInput({ kind: 'finetune', id: 'ft' }, { prompt: 'x', finetune_strength: 2.5 }, 'style'),
    ).toThrow(ZodError);
    const body = createGenerationBody.safeParse({ avatar_id: 'a', prompt: 'x', finetune_strength: 2.5 });
    expect(body.success).toBe(false);
    expect(body.error!.issues[0]!.path).toEqual(['finetune_strength']);
  });
});

describe('prompt sanitising', () => {
  it('strips control characters and trims', () => {
    const body = createGenerationBody.parse({ avatar_id: 'a', prompt: '  TOK\u0000 in\na\tsuit\u0007  ' });
    expect(body.prompt).toBe('TOK in a suit');
  });

  it('refuses an empty or oversized prompt with a clear message', () => {
    const empty = createGenerationBody.safeParse({ avatar_id: 'a', prompt: ' \u0001 ' });
    expect(empty.error!.issues[0]!.message).toBe(
      'prompt must be 1–2000 characters after removing control characters, got 0',
    );
    const huge = createGenerationBody.safeParse({ avatar_id: 'a', prompt: 'x'.repeat(100_000) });
    expect(huge.error!.issues[0]!.message).toContain('got 100000');
  });
});
