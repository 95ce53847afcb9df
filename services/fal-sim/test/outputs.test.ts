import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { createFal, FAL_ENDPOINTS, type FalEndpointId } from '@aisha/shared';
import { samplePhotoArchive } from '@aisha/cli';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';

// What each endpoint returns, checked with the shared output schemas and by decoding the files it serves.
let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0 });
});
afterAll(() => sim.stop());

async function run(endpoint: FalEndpointId, input: Record<string, unknown>) {
  const fal = createFal(sim.connection);
  const { requestId } = await fal.submit(endpoint, input);
  await waitFor(async () => (await fal.status(endpoint, requestId)).status === 'COMPLETED');
  return fal.result(endpoint, requestId);
}

async function download(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return { type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

describe('fal-sim outputs', () => {
  it('generates decodable PNGs of the reported size, in the requested shape and number', async () => {
    const output = FAL_ENDPOINTS['fal-ai/flux-lora'].output.parse(
      await run('fal-ai/flux-lora', {
        prompt: 'TOK',
        image_size: 'portrait_16_9',
        num_images: 2,
        output_format: 'png',
        seed: 42,
        loras: [{ path: 'https://example.test/lora.safetensors', scale: 1 }],
      }),
    );
    expect(output).toMatchObject({ seed: 42, prompt: 'TOK', has_nsfw_concepts: [false, false] });
    expect(output.images).toHaveLength(2);
    for (const image of output.images) {
      const { type, bytes } = await download(image.url);
      expect(type).toBe('image/png');
      const png = PNG.sync.read(bytes);
      expect([png.width, png.height]).toEqual([image.width, image.height]);
      expect(image.height / image.width).toBeCloseTo(16 / 9, 1);
    }
  });

  it('generates decodable JPEGs for the ultra endpoint, by aspect ratio', async () => {
    const output = FAL_ENDPOINTS['fal-ai/flux-pro/v1.1-ultra-finetuned'].output.parse(
      await run('fal-ai/flux-pro/v1.1-ultra-finetuned', {
        prompt: 'TOK',
        finetune_id: 'ft-1',
        finetune_strength: 1.2,
        aspect_ratio: '9:16',
        output_format: 'jpeg',
        safety_tolerance: '2',
      }),
    );
    const image = output.images[0]!;
    const { type, bytes } = await download(image.url);
    expect(type).toBe('image/jpeg');
    const decoded = jpeg.decode(bytes);
    expect([decoded.width, decoded.height]).toEqual([image.width, image.height]);
    expect(image.width / image.height).toBeCloseTo(9 / 16, 1);
  });

  it('trains LoRAs into a downloadable safetensors file and config, and the pro trainer into a finetune id', async () => {
    const fal = createFal(sim.connection);
    const zip = await fal.upload(new Blob([Buffer.from(samplePhotoArchive(2))], { type: 'application/zip' }));
    for (const endpoint of ['fal-ai/flux-lora-portrait-trainer', 'fal-ai/flux-lora-fast-training'] as const) {
      const output = FAL_ENDPOINTS[endpoint].output.parse(await run(endpoint, { images_data_url: zip }));
      const { bytes } = await download(output.diffusers_lora_file.url);
      expect(bytes.length).toBe(output.diffusers_lora_file.file_size);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      expect(8 + headerLength).toBe(bytes.length);
      expect(JSON.parse(bytes.subarray(8).toString('utf8'))).toMatchObject({
        __metadata__: { format: 'pt' },
      });
      const config = await download(output.config_file.url);
      expect(JSON.parse(config.bytes.toString('utf8'))).toMatchObject({ endpoint });
    }
    const pro = FAL_ENDPOINTS['fal-ai/flux-pro-trainer'].output.parse(
      await run('fal-ai/flux-pro-trainer', { data_url: zip, finetune_comment: 'me', mode: 'character' }),
    );
    expect(pro.finetune_id).toEqual(expect.any(String));
  });
});
