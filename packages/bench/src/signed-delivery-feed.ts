import { readFileSync } from 'node:fs';
import type { Request } from 'autocannon';

// Loaded by autocannon inside its worker thread (`setupRequest` must be a module there, not a closure): hands
// every request the next delivery signed beforehand, so no request id is sent twice and no signing happens in
// the load generator. The parent names the file of deliveries in BENCH_DELIVERIES_FILE before each run; each
// run gets a fresh worker, so `next` starts at 0 with the file of that run.

interface SignedDelivery {
  headers: Record<string, string>;
  body: string;
}

const deliveries: SignedDelivery[] = JSON.parse(readFileSync(process.env.BENCH_DELIVERIES_FILE!, 'utf8'));
let next = 0;

function nextDelivery(request: Request): Request {
  // More requests than deliveries would send duplicates; the caller signs a few more than it asks for.
  const delivery = deliveries[next++ % deliveries.length]!;
  return { ...request, headers: { ...request.headers, ...delivery.headers }, body: delivery.body };
}

export = nextDelivery;
