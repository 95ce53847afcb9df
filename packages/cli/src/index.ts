export { drawSamplePhoto, samplePhotoArchive, uploadSamplePhotos } from './sample-photos';
export { GatewayClient } from './gateway-client';
export { TRAINING_STEPS, trainingProgress } from './training-progress';
