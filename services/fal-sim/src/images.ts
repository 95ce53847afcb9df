import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { IMAGE_SIZE_PIXELS, type ImageSizePreset } from '@aisha/shared';

/**
 * Real, decodable images, drawn in code. They keep the requested aspect ratio at an eighth of fal's size
 * (a 1024×1024 request gives 128×128), and the output reports the true pixel size of the bytes.
 */
export const IMAGE_SCALE = 8;

// jpeg-js builds its tables on every encode (about 70 ms each): images are drawn in 16 hues and kept, so that a
// benchmark of hundreds of generations measures the pipeline, not the simulator's encoder.
const HUES = 16;
const CACHE_SIZE = 64;
const drawn = new Map<string, Buffer>();

/** A real image of `width`×`height` in one of 16 gradients picked by `seed`. */
export function imageFor(width: number, height: number, format: 'jpeg' | 'png', seed: number): Buffer {
  const key = `${format}:${width}x${height}:${seed % HUES}`;
  let bytes = drawn.get(key);
  if (!bytes) {
    bytes = drawImage(width, height, format, seed % HUES);
    if (drawn.size >= CACHE_SIZE) drawn.delete(drawn.keys().next().value!);
    drawn.set(key, bytes);
  }
  return bytes;
}

function drawImage(width: number, height: number, format: 'jpeg' | 'png', seed: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  const [r, g, b] = [(seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (r + (x * 255) / width) % 256;
      data[i + 1] = (g + (y * 255) / height) % 256;
      data[i + 2] = b;
      data[i + 3] = 255;
    }
  }
  if (format === 'jpeg') return jpeg.encode({ data, width, height }, 80).data;
  const png = new PNG({ width, height });
  data.copy(png.data);
  return PNG.sync.write(png);
}

/** fal's nominal output size for an input: ultra's aspect ratios (about 4 MP) or flux-lora's image sizes. */
export function nominalSize(input: Record<string, unknown>): [number, number] {
  const size = input.image_size;
  if (typeof size === 'string') {
    const named = IMAGE_SIZE_PIXELS[size as ImageSizePreset];
    return named ? [named.width, named.height] : [1024, 768];
  }
  if (size && typeof size === 'object') {
    const { width, height } = size as { width: number; height: number };
    return [width, height];
  }
  if (typeof input.aspect_ratio === 'string') {
    const [w, h] = input.aspect_ratio.split(':').map(Number) as [number, number];
    const scale = Math.sqrt((2048 * 2048) / (w * h));
    return [Math.round(w * scale), Math.round(h * scale)];
  }
  return input.finetune_id ? [2752, 1536] : [1024, 768];
}

export function scaledSize([width, height]: [number, number]): [number, number] {
  return [Math.max(16, Math.round(width / IMAGE_SCALE)), Math.max(16, Math.round(height / IMAGE_SCALE))];
}
