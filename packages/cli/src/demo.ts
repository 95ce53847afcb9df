import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { z } from 'zod';
import { createFal, falEnv, loadConfigOrExit, TERMINAL_STATUSES } from '@aisha/shared';
import { GatewayClient } from './gateway-client';
import { uploadSamplePhotos } from './sample-photos';
import { TRAINING_STEPS, trainingProgress } from './training-progress';

/**
 * `npm run demo`: against a running system (`npm start`), the whole product in one command:
 * sample photos -> fal storage -> avatar -> training (with a progress bar) -> generation -> image on disk.
 */
const demoEnv = z
  .object({
    GATEWAY_URL: z.url().default('http://127.0.0.1:8080'),
    DEMO_API_KEY: z.string().min(1).default('dev-key'),
    DEMO_OUTPUT_DIR: z.string().default('demo-output'),
    DEMO_TIMEOUT_S: z.coerce.number().int().positive().default(900),
  })
  .transform((env) => ({
    gatewayUrl: env.GATEWAY_URL.replace(/\/+$/, ''),
    apiKey: env.DEMO_API_KEY,
    outputDir: env.DEMO_OUTPUT_DIR,
    deadline: Date.now() + env.DEMO_TIMEOUT_S * 1000,
  }));

const terminal = new Set<string>(TERMINAL_STATUSES);

async function main() {
  const config = loadConfigOrExit({ demo: demoEnv, fal: falEnv });
  const { demo } = config;
  const gateway = new GatewayClient(demo.gatewayUrl, demo.apiKey);
  const fal = createFal(config.fal);

  step('Uploading 10 sample photos (a zip) to fal storage');
  const imagesUrl = await uploadSamplePhotos(fal, 10);
  detail(imagesUrl);

  step('Creating a portrait avatar');
  const avatar = await gateway.createAvatar({
    name: 'Demo avatar',
    training_type: 'portrait',
    images_data_url: imagesUrl,
  });
  detail(`avatar ${avatar.id} (${avatar.status})`);

  step('Training it with the "fast" preset');
  let training = await gateway.startTraining(avatar.id, { preset: 'fast', trigger_phrase: 'TOK' });
  const bar = new SingleBar(
    { format: '  {bar} {step} | {duration_formatted}', hideCursor: true },
    Presets.shades_classic,
  );
  bar.start(TRAINING_STEPS.length - 1, 0, { step: trainingProgress(training).label });
  while (!terminal.has(training.status)) {
    await pause(1000, demo.deadline, 'training');
    training = await gateway.getTraining(training.id);
    const { value, label } = trainingProgress(training);
    bar.update(value, { step: label });
  }
  bar.stop();
  if (training.status !== 'completed')
    throw new Error(`training ${training.status}: ${training.error ?? 'no reason given'}`);
  const ready = await gateway.getAvatar(avatar.id);
  detail(`avatar ${ready.status}, model ${JSON.stringify(ready.model)}`);

  step('Generating an image');
  let generation = await gateway.generate({
    avatar_id: avatar.id,
    prompt: 'TOK, professional headshot, studio light',
  });
  while (!terminal.has(generation.status)) {
    await pause(500, demo.deadline, 'generation');
    generation = await gateway.getGeneration(generation.id);
  }
  if (generation.status !== 'completed' || generation.images.length === 0) {
    throw new Error(`generation ${generation.status}: ${generation.error ?? 'no image'}`);
  }

  const image = generation.images[0]!;
  const bytes = Buffer.from(await (await fetch(image.url)).arrayBuffer());
  const extension = image.content_type?.includes('png') ? 'png' : 'jpeg';
  await mkdir(demo.outputDir, { recursive: true });
  const file = path.resolve(demo.outputDir, `${generation.id}.${extension}`);
  await writeFile(file, bytes);
  step('Done');
  detail(`image URL: ${image.url}`);
  detail(`saved to:  ${file} (${image.width}x${image.height}, ${bytes.length} bytes)`);
}

function step(text: string) {
  process.stdout.write(`\n\x1b[1m▸ ${text}\x1b[0m\n`);
}
function detail(text: string) {
  process.stdout.write(`  ${text}\n`);
}
async function pause(ms: number, deadline: number, what: string) {
  if (Date.now() > deadline) throw new Error(`${what} did not finish before DEMO_TIMEOUT_S`);
  await new Promise((resolve) => setTimeout(resolve, ms));
}

main().catch((err: unknown) => {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.stderr.write('Is the system running? Start it with `npm start` in another shell.\n');
  process.exit(1);
});
