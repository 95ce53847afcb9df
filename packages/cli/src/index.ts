export { drawSamplePhoto, samplePhotoArchive } from './sample-photos';
export { GatewayClient } from './gateway-client';
