import express, { Router } from 'express';
import { absolutePath } from 'swagger-ui-dist';
import { openApiDocument } from './openapi';

/** `/openapi.json`, and `/docs`: Swagger UI served from the package's own files (no CDN). */
export function apiDocs(): Router {
  const router = Router();
  const document = openApiDocument();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.use('/docs/assets', express.static(absolutePath(), { index: false }));
  // The initialiser is a file of its own so that helmet's CSP can forbid inline scripts.
  router.get('/docs/init.js', (_req, res) => {
    res
      .type('application/javascript')
      .send("window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui' });");
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aisha avatar backend API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`);
  });
  return router;
}
