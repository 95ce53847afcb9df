import { z } from 'zod';
import { FAL_ENDPOINTS, type FalEndpointId, falImage } from './endpoints';

/** What a finished fal request means for us: a trained model, or images. */
export const avatarModel = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('lora'), url: z.url() }),
  z.object({ kind: z.literal('finetune'), id: z.string().min(1) }),
]);
export type AvatarModel = z.infer<typeof avatarModel>;

export const modelResult = z.discriminatedUnion('kind', [
  ...avatarModel.options,
  z.object({ kind: z.literal('images'), images: z.array(falImage), seed: z.number().int().optional() }),
]);
export type ModelResult = z.infer<typeof modelResult>;

/** Validates an endpoint's raw output against its schema and maps it to our result. Throws a ZodError on a bad shape. */
export function toModelResult(endpoint: FalEndpointId, output: unknown): ModelResult {
  const parsed: Record<string, unknown> = FAL_ENDPOINTS[endpoint].output.parse(output);
  if ('finetune_id' in parsed) return { kind: 'finetune', id: parsed.finetune_id as string };
  if ('diffusers_lora_file' in parsed) {
    return { kind: 'lora', url: (parsed.diffusers_lora_file as { url: string }).url };
  }
  const { images, seed } = parsed as { images: z.infer<typeof falImage>[]; seed: number };
  return { kind: 'images', images, seed };
}
