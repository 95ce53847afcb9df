import { uploadSamplePhotos } from '@aisha/cli';
import { createFal } from '@aisha/shared';
import { waitFor, type RunningSystem } from '@aisha/testkit';

/** An avatar the gateway will generate with: photos uploaded to fal-sim, trained through the API (preset fast). */
export async function trainReadyAvatar(system: RunningSystem, name: string): Promise<string> {
  const sim = system.urls['fal-sim'];
  const photos = await uploadSamplePhotos(createFal({ key: 'fal-sim-key', queueUrl: sim, restUrl: sim }), 4);
  const avatar = await system.api('POST', '/v1/avatars', {
    name,
    training_type: 'portrait',
    images_data_url: photos,
  });
  if (avatar.status !== 201) throw new Error(`creating avatar ${name} answered ${avatar.status}`);
  const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  if (training.status !== 202) throw new Error(`training avatar ${name} answered ${training.status}`);
  const ready = await waitFor(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const { body } = await system.api('GET', `/v1/avatars/${avatar.body.id}`);
      return ['ready', 'failed'].includes(body.status) ? body : undefined;
    },
    60_000,
    `avatar ${name} to finish training`,
  );
  if (ready.status !== 'ready') throw new Error(`avatar ${name} training failed: ${ready.error}`);
  return avatar.body.id;
}
