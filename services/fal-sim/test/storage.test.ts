import { zipSync } from 'fflate';
import { createFal, FAL_ENDPOINTS } from '@aisha/shared';
import { drawSamplePhoto, samplePhotoArchive } from '@aisha/cli';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';

// fal storage through the real client: the single PUT below 90 MB, the multipart upload above.
let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0 });
});
afterAll(() => sim.stop());

async function trainOn(url: string) {
  const fal = createFal(sim.connection);
  const { requestId } = await fal.submit('fal-ai/flux-lora-fast-training', { images_data_url: url });
  await waitFor(
    async () => (await fal.status('fal-ai/flux-lora-fast-training', requestId)).status === 'COMPLETED',
  );
  return fal.result('fal-ai/flux-lora-fast-training', requestId).catch((err: unknown) => err);
}

/**
 * A valid zip of `files` grown by `gap` bytes between its entries and its central directory. Zip readers follow
 * the directory's offsets, so the gap is never read, and building it costs no CRC over the padding.
 */
function paddedZip(files: Record<string, Uint8Array>, gap: number): Blob {
  const zip = zipSync(files, { level: 0 });
  const directoryAt = Buffer.from(zip).readUInt32LE(zip.length - 22 + 16);
  const tail = Buffer.from(zip.subarray(directoryAt));
  tail.writeUInt32LE(directoryAt + gap, tail.length - 22 + 16);
  return new Blob([zip.subarray(0, directoryAt), new Uint8Array(gap), tail], { type: 'application/zip' });
}

describe('fal-sim storage', () => {
  it('serves an uploaded file back byte for byte, with its content type', async () => {
    const zip = Buffer.from(samplePhotoArchive(2));
    const url = await createFal(sim.connection).upload(new Blob([zip], { type: 'application/zip' }));
    const res = await fetch(url);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(Buffer.from(await res.arrayBuffer()).equals(zip)).toBe(true);
    // An upload URL is good for one PUT only.
    const again = await fetch(`${sim.url}/storage/upload/${url.split('/')[4]}`, { method: 'PUT', body: 'x' });
    expect(again.status).toBe(404);
  });

  it('takes a file over 90 MB as the client sends it, in numbered parts, and trains on it', async () => {
    const blob = paddedZip({ 'photo-01.png': drawSamplePhoto(1, 32) }, 91 * 1024 * 1024);
    const url = await createFal(sim.connection).upload(blob);
    const served = await fetch(url);
    expect(served.headers.get('content-length')).toBe(String(blob.size));
    await served.body?.cancel();

    const output = await trainOn(url);
    expect(FAL_ENDPOINTS['fal-ai/flux-lora-fast-training'].output.safeParse(output).success).toBe(true);
  });

  it('refuses to complete a multipart upload whose parts do not match', async () => {
    const init = await fetch(`${sim.url}/storage/upload/initiate-multipart?storage_type=fal-cdn-v3`, {
      method: 'POST',
      headers: { authorization: `Key ${sim.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content_type: 'application/zip', file_name: 'a.zip' }),
    });
    const { upload_url: uploadUrl, file_url: fileUrl } = (await init.json()) as Record<string, string>;
    const part = (await (await fetch(`${uploadUrl}/1`, { method: 'PUT', body: 'abc' })).json()) as {
      partNumber: number;
      etag: string;
    };
    expect(part).toEqual({ partNumber: 1, etag: expect.stringMatching(/^"[0-9a-f]{32}"$/) });
    const complete = (parts: unknown) =>
      fetch(`${uploadUrl}/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ parts }),
      });
    const missing = await complete([part, { partNumber: 2, etag: '"x"' }]);
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { detail: string }).detail).toBe('part 2 was never uploaded');
    expect((await fetch(fileUrl!)).status).toBe(404);
    expect((await complete([part])).status).toBe(200);
    expect(await (await fetch(fileUrl!)).text()).toBe('abc');
  });

  it('fails a training whose archive was never uploaded, naming the field', async () => {
    const init = await fetch(`${sim.url}/storage/upload/initiate?storage_type=fal-cdn-v3`, {
      method: 'POST',
      headers: { authorization: `Key ${sim.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content_type: 'application/zip', file_name: 'never.zip' }),
    });
    const { file_url: fileUrl } = (await init.json()) as { file_url: string };
    const err = (await trainOn(fileUrl)) as Error & {
      body: { detail: Array<{ loc: string[]; msg: string }> };
    };
    expect(err.name).toBe('ValidationError');
    expect(err.body.detail[0]).toMatchObject({ loc: ['body', 'images_data_url'] });
    expect(err.body.detail[0]!.msg).toContain('could not download the archive');
  });

  it('asks for the key before it hands out an upload URL', async () => {
    const err = await createFal({ ...sim.connection, key: 'wrong' })
      .upload(new Blob(['x']))
      .catch((e: unknown) => e);
    expect((err as { status?: number }).status).toBe(401);
  });
});
