import { randomUUID } from 'node:crypto';
import { unzipSync } from 'fflate';
import { FAL_ENDPOINTS, type FalEndpointId } from '@aisha/shared';
import type { FileStore } from './file-store';
import { imageFor, nominalSize, scaledSize } from './images';

/** How a run ends: fal's output, or fal's error (the result GET answers `statusCode` with `body`). */
export type RunOutcome =
  | { ok: true; output: Record<string, unknown> }
  | { ok: false; statusCode: number; body: { detail: unknown }; message: string };

const IMAGE_EXTENSIONS = /\.(png|jpe?g|webp)$/i;

export function runFailure(statusCode: number, detail: unknown): RunOutcome {
  return { ok: false, statusCode, body: { detail }, message: `Invalid status code: ${statusCode}` };
}

/** Computes the outcome of a run the way the real endpoint would end it. */
export function produceOutcome(
  endpoint: FalEndpointId,
  input: Record<string, unknown>,
  files: FileStore,
  seedHint: number,
): RunOutcome {
  if (FAL_ENDPOINTS[endpoint].kind === 'training') {
    const field = 'data_url' in input ? 'data_url' : 'images_data_url';
    const problem = checkArchive(String(input[field]), files);
    if (problem) return runFailure(422, [{ loc: ['body', field], msg: problem, type: 'value_error' }]);
    if (endpoint === 'fal-ai/flux-pro-trainer') return { ok: true, output: { finetune_id: randomUUID() } };
    const weights = loraBytes();
    const lora = files.put('pytorch_lora_weights.safetensors', weights, 'application/octet-stream');
    const config = files.put(
      'config.json',
      Buffer.from(JSON.stringify({ endpoint, input })),
      'application/json',
    );
    return {
      ok: true,
      output: {
        diffusers_lora_file: {
          url: lora,
          content_type: 'application/octet-stream',
          file_name: 'pytorch_lora_weights.safetensors',
          file_size: weights.length,
        },
        config_file: { url: config, content_type: 'application/json', file_name: 'config.json' },
      },
    };
  }
  const format = input.output_format === 'png' ? 'png' : 'jpeg';
  const [width, height] = scaledSize(nominalSize(input));
  const seed = typeof input.seed === 'number' ? input.seed : seedHint;
  const count = typeof input.num_images === 'number' ? input.num_images : 1;
  const images = Array.from({ length: count }, (_, i) => {
    const url = files.put(
      `image-${i}.${format}`,
      imageFor(width, height, format, seed + i),
      `image/${format}`,
    );
    return { url, width, height, content_type: `image/${format}` };
  });
  return {
    ok: true,
    output: {
      images,
      seed,
      prompt: input.prompt,
      has_nsfw_concepts: images.map(() => false),
      timings: { inference: 0.01 },
    },
  };
}

// A trainer fetches its archive; we can only look inside archives stored in fal-sim. Other URLs are taken on trust.
function checkArchive(url: string, files: FileStore): string | undefined {
  if (!files.isOwnUrl(url)) return undefined;
  const file = files.fromUrl(url);
  if (!file) return `could not download the archive: ${url} not found`;
  let entries: Record<string, Uint8Array>;
  try {
    // Only entries named as images are inflated: an archive may be hundreds of MB.
    entries = unzipSync(new Uint8Array(file.bytes.buffer, file.bytes.byteOffset, file.bytes.length), {
      filter: (entry) => IMAGE_EXTENSIONS.test(entry.name),
    });
  } catch {
    return 'the archive is not a valid zip file';
  }
  const images = Object.values(entries).filter(isImage);
  return images.length === 0 ? 'the archive holds no images (png, jpeg or webp)' : undefined;
}

function isImage(bytes: Uint8Array): boolean {
  const png = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const jpg = bytes[0] === 0xff && bytes[1] === 0xd8;
  const webp = Buffer.from(bytes.subarray(8, 12)).toString('latin1') === 'WEBP';
  return png || jpg || webp;
}

/** A valid, empty safetensors file: an 8-byte header length, then a JSON header padded with spaces (as allowed). */
function loraBytes(): Buffer {
  const header = Buffer.from('{"__metadata__":{"format":"pt","producer":"fal-sim"}}'.padEnd(64, ' '));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header]);
}
