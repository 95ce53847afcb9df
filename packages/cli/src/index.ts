export { drawSamplePhoto, samplePhotoArchive, uploadSamplePhotos } from './sample-photos';
export { GatewayClient } from './gateway-client';
