import { z } from 'zod';
import {
  DEFAULT_PRICES,
  FAL_ENDPOINTS,
  IMAGE_SIZE_PIXELS,
  IMAGE_SIZE_PRESETS,
  estimateCostUsd,
  falAppPath,
  toModelResult,
} from '@aisha/shared';

const zip = 'https://v3.fal.media/files/lion/photos.zip';

describe('fal endpoint registry', () => {
  it('accepts a realistic request for each endpoint', () => {
    const realistic = {
      'fal-ai/flux-lora-portrait-trainer': {
        images_data_url: zip,
        trigger_phrase: 'TOK_avatar123',
        steps: 1000,
        learning_rate: 0.0002,
        multiresolution_training: true,
        subject_crop: true,
        create_masks: true,
      },
      'fal-ai/flux-pro-trainer': {
        data_url: zip,
        finetune_comment: 'avatar 123',
        mode: 'style',
        iterations: 500,
        learning_rate: 1e-4,
        priority: 'quality',
        captioning: true,
        trigger_word: 'TOK',
      },
      'fal-ai/flux-lora-fast-training': {
        images_data_url: zip,
        steps: 1000,
        is_style: true,
        trigger_word: 'TOK',
      },
      'fal-ai/flux-pro/v1.1-ultra-finetuned': {
        prompt: 'TOK_avatar123 professional headshot',
        finetune_id: 'ft-abc123',
        finetune_strength: 1.1,
        aspect_ratio: '1:1',
        num_images: 1,
        output_format: 'jpeg',
        safety_tolerance: '2',
      },
      'fal-ai/flux-lora': {
        prompt: 'TOK in a business suit',
        loras: [{ path: 'https://v3.fal.media/files/x/lora.safetensors', scale: 1 }],
        image_size: 'square_hd',
        num_images: 1,
      },
    } as const;
    for (const [endpoint, input] of Object.entries(realistic)) {
      expect(FAL_ENDPOINTS[endpoint as keyof typeof FAL_ENDPOINTS].input.safeParse(input).success).toBe(true);
    }
  });

  it("rejects the seed guide's field names", () => {
    const pro = FAL_ENDPOINTS['fal-ai/flux-pro-trainer'].input.safeParse({
      images_data_url: zip,
      trigger_word: 'TOK',
      iterations: 500,
      auto_captioning: true,
      create_masks: true,
    });
    expect(pro.success).toBe(false);
    const paths = pro.error!.issues.flatMap((i) =>
      i.code === 'unrecognized_keys' ? i.keys : i.path.map(String),
    );
    expect(paths).toEqual(
      expect.arrayContaining([
        'data_url',
        'finetune_comment',
        'images_data_url',
        'auto_captioning',
        'create_masks',
      ]),
    );

    const ultra = FAL_ENDPOINTS['fal-ai/flux-pro/v1.1-ultra-finetuned'].input.safeParse({
      prompt: 'x',
      finetune_id: 'ft',
      finetune_strength: 1.1,
      enable_safety_checker: true,
    });
    expect(ultra.success).toBe(false);
    const portrait = FAL_ENDPOINTS['fal-ai/flux-lora-portrait-trainer'].input.safeParse({
      images_data_url: zip,
      webhook_url: 'https://example.com/hook',
    });
    expect(portrait.success).toBe(false);
  });

  it('enforces enums and ranges', () => {
    const ultra = FAL_ENDPOINTS['fal-ai/flux-pro/v1.1-ultra-finetuned'].input;
    const base = { prompt: 'x', finetune_id: 'ft', finetune_strength: 1 };
    expect(ultra.safeParse({ ...base, finetune_strength: 2.5 }).success).toBe(false);
    expect(ultra.safeParse({ ...base, aspect_ratio: '5:4' }).success).toBe(false);
    expect(ultra.safeParse({ ...base, safety_tolerance: 2 }).success).toBe(false);
    expect(ultra.safeParse({ prompt: 'x', finetune_id: 'ft' }).success).toBe(false);
    const pro = FAL_ENDPOINTS['fal-ai/flux-pro-trainer'].input;
    expect(pro.safeParse({ data_url: zip, finetune_comment: 'c', lora_rank: 8 }).success).toBe(false);
    expect(pro.safeParse({ data_url: zip, finetune_comment: 'c', priority: 'high_res_only' }).success).toBe(
      true,
    );
  });

  it("records fal's documented defaults as metadata, without filling them in", () => {
    const defaults = (endpoint: keyof typeof FAL_ENDPOINTS) => {
      const schema = z.toJSONSchema(FAL_ENDPOINTS[endpoint].input, { io: 'input' }) as {
        properties: Record<
          string,
          { default?: unknown; items?: { properties: Record<string, { default?: unknown }> } }
        >;
      };
      return Object.fromEntries(
        Object.entries(schema.properties)
          .filter(([, field]) => field.default !== undefined)
          .map(([name, field]) => [name, field.default]),
      );
    };
    expect(defaults('fal-ai/flux-lora-portrait-trainer')).toEqual({
      steps: 2500,
      learning_rate: 0.00009,
      multiresolution_training: true,
      subject_crop: true,
    });
    expect(defaults('fal-ai/flux-pro-trainer')).toEqual({
      mode: 'character',
      iterations: 300,
      trigger_word: 'TOK',
      lora_rank: 32,
      finetune_type: 'full',
    });
    expect(defaults('fal-ai/flux-pro/v1.1-ultra-finetuned')).toEqual({
      aspect_ratio: '16:9',
      safety_tolerance: '2',
    });
    expect(defaults('fal-ai/flux-lora')).toEqual({ num_inference_steps: 28, guidance_scale: 3.5 });
    const lora = z.toJSONSchema(FAL_ENDPOINTS['fal-ai/flux-lora'].input, { io: 'input' }) as unknown as {
      properties: { loras: { items: { properties: { scale: { default?: unknown } } } } };
    };
    expect(lora.properties.loras.items.properties.scale.default).toBe(1);

    // What we send is what goes out: no default is added by a parse.
    expect(FAL_ENDPOINTS['fal-ai/flux-lora-portrait-trainer'].input.parse({ images_data_url: zip })).toEqual({
      images_data_url: zip,
    });
    expect(
      FAL_ENDPOINTS['fal-ai/flux-lora'].input.parse({
        prompt: 'x',
        loras: [{ path: 'https://x/l.safetensors' }],
      }),
    ).toEqual({ prompt: 'x', loras: [{ path: 'https://x/l.safetensors' }] });
  });

  it('knows the pixels of every named image size, and prices flux-lora by them', () => {
    expect(Object.keys(IMAGE_SIZE_PIXELS)).toEqual(IMAGE_SIZE_PRESETS);
    expect(IMAGE_SIZE_PIXELS.portrait_16_9).toEqual({ width: 576, height: 1024 });
    const cost = estimateCostUsd(DEFAULT_PRICES['fal-ai/flux-lora'], {
      image_size: 'square_hd',
      num_images: 2,
    });
    expect(cost).toBeCloseTo(0.035 * 1.048576 * 2, 10);
  });

  it('maps outputs to our model results', () => {
    const file = {
      url: 'https://v3.fal.media/files/a/lora.safetensors',
      content_type: 'application/octet-stream',
    };
    expect(
      toModelResult('fal-ai/flux-lora-portrait-trainer', {
        diffusers_lora_file: file,
        config_file: { url: 'https://v3.fal.media/files/a/config.json' },
      }),
    ).toEqual({ kind: 'lora', url: file.url });
    expect(toModelResult('fal-ai/flux-pro-trainer', { finetune_id: 'ft-42' })).toEqual({
      kind: 'finetune',
      id: 'ft-42',
    });
    const image = {
      url: 'https://v3.fal.media/files/a/img.jpeg',
      width: 1024,
      height: 1024,
      content_type: 'image/jpeg',
    };
    expect(
      toModelResult('fal-ai/flux-lora', {
        images: [image],
        seed: 7,
        has_nsfw_concepts: [false],
        timings: {},
      }),
    ).toEqual({ kind: 'images', images: [image], seed: 7 });
    expect(() => toModelResult('fal-ai/flux-pro-trainer', { result: { finetune_id: 'x' } })).toThrow();
  });

  it('polls sub-path endpoints under their owner/alias', () => {
    expect(falAppPath('fal-ai/flux-pro/v1.1-ultra-finetuned')).toBe('fal-ai/flux-pro');
    expect(falAppPath('fal-ai/flux-lora')).toBe('fal-ai/flux-lora');
  });
});
