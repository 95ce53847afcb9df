import express, { Router } from 'express';
import { z } from 'zod';
import type { FileStore } from './file-store';
import { pydanticDetail, sendFalError } from './fal-errors';
import { requireFalKey } from './queue-routes';

const initiateBody = z.object({ content_type: z.string().min(1), file_name: z.string().min(1) });

/** fal storage: initiate (authenticated), the PUT to `upload_url`, and public file downloads. */
export function storageRoutes(files: FileStore, keys: () => string[]): Router {
  const router = Router();

  router.post('/storage/upload/initiate', express.json(), requireFalKey(keys), (req, res) => {
    const parsed = initiateBody.safeParse(req.body ?? {});
    if (!parsed.success) return sendFalError(res, 422, pydanticDetail(parsed.error));
    const { uploadUrl, fileUrl } = files.initiate(parsed.data.content_type, parsed.data.file_name);
    res.json({ upload_url: uploadUrl, file_url: fileUrl });
  });

  // Files over 90 MB go through multipart uploads in the real client; fal-sim does not emulate them.
  router.post('/storage/upload/initiate-multipart', requireFalKey(keys), (_req, res) => {
    sendFalError(res, 501, 'fal-sim does not emulate multipart uploads (files over 90 MB)');
  });

  router.put('/storage/upload/:token', express.raw({ type: () => true, limit: '100mb' }), (req, res) => {
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
