import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  headers: http.IncomingHttpHeaders;
  raw: Buffer;
  body: { request_id: string; status: string; payload: unknown; error?: string };
}

/** A plain HTTP server standing in for webhook-ingest: records every delivery and answers `status()`. */
export async function startWebhookReceiver(status: () => number = () => 200) {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      deliveries.push({ headers: req.headers, raw, body: JSON.parse(raw.toString('utf8')) });
      res.statusCode = status();
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    deliveries,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
