import { PNG } from 'pngjs';
import { zipSync } from 'fflate';
import { FalTransportError, type Fal } from '@aisha/shared';

/**
 * Stand-in "photos" for the demo: small, real PNGs (a lit disc on a gradient, a different hue each), drawn in code
 * so that the repository ships no binary fixtures. fal trainers want 10+ real photos of one subject; fal-sim only
 * checks that the archive is a zip of images.
 */
export function drawSamplePhoto(index: number, size = 256): Buffer {
  const png = new PNG({ width: size, height: size });
  const hue = (index * 47) % 360;
  const [r, g, b] = hueToRgb(hue);
  const centre = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const offset = (y * size + x) * 4;
      const inside = (x - centre) ** 2 + (y - centre * 0.9) ** 2 < (size * 0.28) ** 2;
      const shade = inside ? 1 : 0.35 + (0.4 * y) / size;
      png.data[offset] = Math.round(r * shade);
      png.data[offset + 1] = Math.round(g * shade);
      png.data[offset + 2] = Math.round(b * shade);
      png.data[offset + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** A zip of `count` sample photos, as a trainer's `images_data_url` expects. */
export function samplePhotoArchive(count = 10): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < count; i++) files[`photo-${String(i + 1).padStart(2, '0')}.png`] = drawSamplePhoto(i);
  return zipSync(files, { level: 0 });
}

/**
 * Uploads a zip of `count` sample photos to fal storage through the fal client and returns its URL. A reset
 * connection is retried (up to three attempts): an idle keep-alive socket closed by the server just as the client
 * reused it, seen against fal-sim on a loaded machine; an upload is safe to repeat.
 */
export async function uploadSamplePhotos(fal: Pick<Fal, 'upload'>, count = 10): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fal.upload(
        new Blob([Buffer.from(samplePhotoArchive(count))], { type: 'application/zip' }),
      );
    } catch (err) {
      if (!(err instanceof FalTransportError) || attempt === 3) throw err;
    }
  }
}

function hueToRgb(hue: number): [number, number, number] {
  const k = (n: number) => (n + hue / 60) % 6;
  const f = (n: number) => 255 * (1 - Math.max(0, Math.min(k(n), 4 - k(n), 1)));
  return [f(5), f(3), f(1)];
}
