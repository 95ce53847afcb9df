import { unzipSync } from 'fflate';
import { PNG } from 'pngjs';
import { samplePhotoArchive } from '@aisha/cli';

describe('demo sample photos', () => {
  it('are a zip of distinct, decodable PNG images', () => {
    const entries = unzipSync(samplePhotoArchive(10));
    const names = Object.keys(entries);
    expect(names).toHaveLength(10);
    const images = names.map((name) => PNG.sync.read(Buffer.from(entries[name]!)));
    for (const image of images) {
      expect([image.width, image.height]).toEqual([256, 256]);
    }
    const firstPixels = new Set(images.map((image) => image.data.readUInt32BE(0)));
    expect(firstPixels.size).toBeGreaterThan(5);
  });
});
