import { z } from 'zod';
import { IMAGE_SIZE_PIXELS, type FalEndpointId, type ImageSizePreset } from './endpoints';
import { jsonVariable } from '../config';

/**
 * Estimated prices, for the cost metric only: third-party and page figures from fal-contract.md, to be checked
 * against fal's model pages before launch. `FAL_PRICES` (JSON) overrides any entry, e.g.
 * `{"fal-ai/flux-pro-trainer":{"perRequest":2}}`. Unknown prices are 0 until configured.
 */
export const priceEntry = z.strictObject({
  perRequest: z.number().min(0).optional(),
  perImage: z.number().min(0).optional(),
  perMegapixel: z.number().min(0).optional(),
  perStep: z.number().min(0).optional(),
});
export type PriceEntry = z.infer<typeof priceEntry>;

export const DEFAULT_PRICES: Record<FalEndpointId, PriceEntry> = {
  'fal-ai/flux-lora-portrait-trainer': { perStep: 0.0024 },
  'fal-ai/flux-pro-trainer': {},
  'fal-ai/flux-lora-fast-training': {},
  'fal-ai/flux-pro/v1.1-ultra-finetuned': { perImage: 0.07 },
  'fal-ai/flux-lora': { perMegapixel: 0.035 },
};

export const pricesEnv = z
  .object({
    FAL_PRICES: jsonVariable(z.record(z.string(), priceEntry)).optional(),
  })
  .transform((env) => ({ ...DEFAULT_PRICES, ...env.FAL_PRICES }) as Record<string, PriceEntry>);

/** What a request is estimated to cost in USD, from its input. */
export function estimateCostUsd(price: PriceEntry | undefined, input: Record<string, unknown>): number {
  if (!price) return 0;
  const images = typeof input.num_images === 'number' ? input.num_images : 1;
  const steps =
    typeof input.steps === 'number'
      ? input.steps
      : typeof input.iterations === 'number'
        ? input.iterations
        : 0;
  const size = input.image_size;
  const megapixels =
    typeof size === 'string'
      ? megapixelsOf(IMAGE_SIZE_PIXELS[size as ImageSizePreset])
      : size && typeof size === 'object'
        ? ((size as { width: number }).width * (size as { height: number }).height) / 1e6
        : 1;
  return (
    (price.perRequest ?? 0) +
    (price.perImage ?? 0) * images +
    (price.perMegapixel ?? 0) * megapixels * images +
    (price.perStep ?? 0) * steps
  );
}

function megapixelsOf(size: { width: number; height: number } | undefined): number {
  return size ? (size.width * size.height) / 1e6 : 1;
}
