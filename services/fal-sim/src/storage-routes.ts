import express, { Router } from 'express';
import { z } from 'zod';
import type { FileStore } from './file-store';
import { pydanticDetail, sendFalError } from './fal-errors';
import { requireFalKey } from './queue-routes';

const initiateBody = z.object({ content_type: z.string().min(1), file_name: z.string().min(1) });
const completeBody = z.object({
  parts: z.array(z.object({ partNumber: z.number().int().min(1), etag: z.string().min(1) })),
});
const rawBody = express.raw({ type: () => true, limit: '100mb' });

/** fal storage: initiate (authenticated), the PUT to `upload_url`, and public file downloads. */
export function storageRoutes(files: FileStore, keys: () => string[]): Router {
  const router = Router();

  router.post('/storage/upload/initiate', express.json(), requireFalKey(keys), (req, res) => {
    const parsed = initiateBody.safeParse(req.body ?? {});
    if (!parsed.success) return sendFalError(res, 422, pydanticDetail(parsed.error));
    const { uploadUrl, fileUrl } = files.initiate(parsed.data.content_type, parsed.data.file_name);
    res.json({ upload_url: uploadUrl, file_url: fileUrl });
  });

  router.post('/storage/upload/initiate-multipart', express.json(), requireFalKey(keys), (req, res) => {
    const parsed = initiateBody.safeParse(req.body ?? {});
    if (!parsed.success) return sendFalError(res, 422, pydanticDetail(parsed.error));
    const { uploadUrl, fileUrl } = files.initiateMultipart(parsed.data.content_type, parsed.data.file_name);
    res.json({ upload_url: uploadUrl, file_url: fileUrl });
  });

  router.put('/storage/upload/multipart/:token/:part', rawBody, (req, res) => {
    const partNumber = Number(req.params.part);
    if (!Number.isInteger(partNumber) || partNumber < 1) {
      return sendFalError(res, 400, `part number must be a positive integer, got ${req.params.part}`);
    }
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = files.putPart(req.params.token, partNumber, bytes);
    if (!answer) return sendFalError(res, 404, 'unknown or already completed multipart upload');
    res.json(answer);
  });

  router.post('/storage/upload/multipart/:token/complete', express.json(), (req, res) => {
    const parsed = completeBody.safeParse(req.body ?? {});
    if (!parsed.success) return sendFalError(res, 422, pydanticDetail(parsed.error));
    const problem = files.completeMultipart(req.params.token, parsed.data.parts);
    if (problem) return sendFalError(res, 400, problem);
    res.json({});
  });

  router.put('/storage/upload/:token', rawBody, (req, res) => {
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!files.completeUpload(req.params.token, bytes, req.get('content-type'))) {
      return sendFalError(res, 404, 'unknown or already used upload URL');
    }
    res.json({});
  });

  router.get('/files/:token/:name', (req, res) => {
    const file = files.get(req.params.token);
    if (!file) return sendFalError(res, 404, 'file not found');
    res.type(file.contentType).send(file.bytes);
  });

  return router;
}
