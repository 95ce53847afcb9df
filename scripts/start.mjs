// `npm start`: runs every service as its own process, the way production runs them, with prefixed,
// coloured log lines. Without FAL_KEY it also runs fal-sim and points everything at it.
// Ctrl-C (or SIGTERM) stops them all: SIGTERM first, SIGKILL after a grace period.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import readline from 'node:readline';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const prettify = require('pino-pretty').prettyFactory({
  colorize: true,
  translateTime: 'HH:MM:ss.l',
  ignore: 'pid,hostname,service,name',
});

const env = { ...process.env };
const simulator = !env.FAL_KEY;
const port = (name, fallback) => Number(env[name] ?? fallback);
// fal is told to call webhook-ingest here: follow INGEST_PORT unless the URL is set (a tunnel, a public host).
env.PUBLIC_WEBHOOK_BASE_URL ??= `http://127.0.0.1:${port('INGEST_PORT', 8081)}`;

// The order is the start order: fal-sim first, then the services that answer HTTP, then the workers.
const SERVICES = [
  { name: 'fal-sim', port: port('FAL_SIM_PORT', 8090), colour: 90, simulatorOnly: true },
  { name: 'gateway', port: port('GATEWAY_PORT', 8080), colour: 36 },
  { name: 'webhook-ingest', port: port('INGEST_PORT', 8081), colour: 35 },
  { name: 'portrait-worker', port: port('PORTRAIT_WORKER_PORT', 9101), colour: 33 },
  { name: 'pro-worker', port: port('PRO_WORKER_PORT', 9102), colour: 32 },
  { name: 'ultra-worker', port: port('ULTRA_WORKER_PORT', 9103), colour: 34 },
];

const selected = SERVICES.filter((s) => !(s.simulatorOnly && !simulator)).filter((s) => {
  const built = existsSync(path.join(root, 'services', s.name, 'dist', 'main.js'));
  if (!built) console.log(`[start] ${s.name}: not built yet, skipped`);
  return built;
});

if (selected.length === 0) {
  console.log('[start] no service is built: run `npm run build` and check its errors');
  process.exit(1);
}

const children = new Map();
let stopping = false;
const width = Math.max(...selected.map((s) => s.name.length));

function prefixed(service, stream) {
  const label = `\x1b[${service.colour}m${service.name.padEnd(width)} |\x1b[0m `;
  const lines = readline.createInterface({ input: stream });
  lines.on('line', (line) => {
    let text = line;
    try {
      text = prettify(JSON.parse(line));
    } catch {
      /* not a pino line: print it as it is */
    }
    for (const part of text.trimEnd().split('\n')) process.stdout.write(`${label}${part}\n`);
  });
}

function startService(service) {
  const child = spawn(process.execPath, [path.join(root, 'services', service.name, 'dist', 'main.js')], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prefixed(service, child.stdout);
  prefixed(service, child.stderr);
  children.set(service.name, child);
  child.on('exit', (code, signal) => {
    children.delete(service.name);
    if (!stopping) {
      console.log(`[start] ${service.name} exited (${signal ?? code}); stopping everything`);
      stop(1);
    } else if (children.size === 0) {
      process.exit(process.exitCode ?? 0);
    }
  });
}

async function waitHealthy(service, deadlineMs = 60_000) {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until && !stopping) {
    try {
      const res = await fetch(`http://127.0.0.1:${service.port}/healthz`);
      if (res.ok) return true;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  if (children.size === 0) process.exit(code);
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
    process.exit(code || 1);
  }, 15_000).unref();
}

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

for (const service of selected) {
  // Ctrl-C while an earlier service was coming up: start nothing more (it would outlive the stop).
  if (stopping) break;
  startService(service);
  // Services depend on fal-sim (JWKS, storage) and the gateway (migrations): wait for each before the next.
  if (!(await waitHealthy(service))) {
    if (!stopping) console.log(`[start] ${service.name} did not become healthy; stopping`);
    stop(1);
    break;
  }
}

if (!stopping) {
  const url = (name, p = '') => `http://127.0.0.1:${SERVICES.find((s) => s.name === name).port}${p}`;
  const running = new Set(selected.map((s) => s.name));
  // The services' defaults (packages/shared config) apply only in simulator mode with the variable unset; a key
  // set by the user is a secret and is named, never printed.
  const adminKeyNote =
    simulator && env.ADMIN_KEY === undefined ? 'admin key: admin-key' : 'admin key: the value of ADMIN_KEY';
  const apiKeyNote =
    simulator && env.API_KEYS === undefined
      ? 'Dev API key  dev-key   (Authorization: Bearer dev-key)'
      : 'API keys     the keys in API_KEYS (Authorization: Bearer <key>)';
  const lines = [
    '',
    `Avatar backend running (${simulator ? 'simulator mode: fal-sim stands in for fal.ai' : 'fal.ai mode'})`,
    running.has('gateway') && `  API          ${url('gateway', '/v1')}`,
    running.has('gateway') &&
      `  API docs     ${url('gateway', '/docs')}  (OpenAPI: ${url('gateway', '/openapi.json')})`,
    running.has('gateway') && `  Bull Board   ${url('gateway', '/admin/queues')}  (${adminKeyNote})`,
    running.has('webhook-ingest') && `  Webhooks     ${url('webhook-ingest', '/v1/fal/webhook')}`,
    running.has('fal-sim') && `  fal-sim      ${url('fal-sim')}`,
    `  Metrics      ${selected.map((s) => `${s.name} :${s.port}/metrics`).join(', ')}`,
    `  ${apiKeyNote}`,
    '  Ctrl-C stops everything.',
    '',
  ];
  console.log(lines.filter(Boolean).join('\n'));
}
