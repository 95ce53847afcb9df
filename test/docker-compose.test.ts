import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

// No Docker engine runs where the tests run: the compose file and Dockerfile are checked by parsing.
const root = path.resolve(__dirname, '..');
// Compose honours YAML merge keys (`<<: *anchor`), as does this parse.
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true });
const dockerfileTargets = [
  ...readFileSync(path.join(root, 'Dockerfile'), 'utf8').matchAll(/^FROM \S+ AS (\S+)$/gm),
].map((m) => m[1]);

// The services of shared/design.md with their default ports.
const DESIGN = {
  gateway: 8080,
  'webhook-ingest': 8081,
  'portrait-worker': 9101,
  'pro-worker': 9102,
  'ultra-worker': 9103,
  'fal-sim': 8090,
};

// Our five services, and those of them that call fal (workers) or fetch its JWKS (webhook-ingest).
const OURS = ['gateway', 'webhook-ingest', 'portrait-worker', 'pro-worker', 'ultra-worker'];
const CALLS_FAL = ['webhook-ingest', 'portrait-worker', 'pro-worker', 'ultra-worker'];
const SECRET = /KEY|SECRET|PASSWORD|TOKEN/;

describe('docker-compose.yml', () => {
  it.each(Object.entries(DESIGN))(
    'runs %s from its Dockerfile target, on port %d, with a healthcheck',
    (name, port) => {
      const service = compose.services[name];
      expect(service).toBeDefined();
      expect(service.build.target).toBe(name);
      expect(dockerfileTargets).toContain(name);
      expect(JSON.stringify(service.healthcheck.test)).toContain(`127.0.0.1:${port}/`);
      const envPort = Object.entries(service.environment).find(([k]) => k.endsWith('_PORT'));
      expect(Number(envPort?.[1])).toBe(port);
    },
  );

  it('keeps Redis durable and non-evicting, and PostgreSQL on a volume', () => {
    const redis = compose.services.redis;
    expect(redis.image).toMatch(/^redis:7/);
    expect(redis.command).toEqual(
      expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']),
    );
    expect(compose.services.postgres.image).toMatch(/^postgres:16/);
    expect(compose.services.postgres.volumes.join()).toContain('/var/lib/postgresql/data');
  });

  it('starts services only once their data stores are healthy, and fal-sim only in the sim profile', () => {
    for (const name of OURS) {
      expect(compose.services[name].depends_on.redis.condition).toBe('service_healthy');
      expect(compose.services[name].depends_on.postgres.condition).toBe('service_healthy');
    }
    expect(compose.services['fal-sim'].profiles).toEqual(['sim']);
    expect(dockerfileTargets).toContain(compose.services.migrate.build.target);
  });

  it.each(OURS)('starts %s only after the one-shot migrate has succeeded', (name) => {
    expect(compose.services[name].depends_on.migrate.condition).toBe('service_completed_successfully');
  });

  it.each(CALLS_FAL)(
    'starts %s after fal-sim is healthy when the sim profile runs it, and without it otherwise',
    (name) => {
      expect(compose.services[name].depends_on['fal-sim']).toEqual({
        condition: 'service_healthy',
        required: false,
      });
    },
  );

  it('restarts every long-running service (the ServiceDown runbook), but not the one-shot migrate', () => {
    const longRunning = Object.keys(compose.services).filter((name) => name !== 'migrate');
    expect(longRunning).toEqual(
      expect.arrayContaining([...OURS, 'fal-sim', 'redis', 'postgres', 'prometheus', 'grafana']),
    );
    const notRestarted = longRunning.filter((name) => compose.services[name].restart !== 'unless-stopped');
    expect(notRestarted).toEqual([]);
    expect(compose.services.migrate.restart).toBeUndefined();
  });

  it('takes secrets from the environment, never from the file', () => {
    const text = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    expect(text).toMatch(/FAL_KEY: \$\{FAL_KEY:-\}/);
    // Every secret-looking variable a service gets is the .env's value, with no default written here.
    const inlined: string[] = [];
    for (const [name, service] of Object.entries(
      compose.services as Record<string, { environment?: object }>,
    )) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        if (SECRET.test(variable) && !/^\$\{[A-Z_]+(:\?[^}]*|:-)\}$/.test(String(value))) {
          inlined.push(`${name}.${variable}=${String(value)}`);
        }
      }
    }
    expect(inlined).toEqual([]);
    expect(text).not.toMatch(/PASSWORD:-/);
  });

  it('ships an .env.example with every secret-looking variable empty', () => {
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    const variables = [...example.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map(([, name, value]) => ({
      name: name!,
      value: value!,
    }));
    const secrets = variables.filter(({ name }) => SECRET.test(name));
    expect(secrets.map(({ name }) => name)).toEqual(
      expect.arrayContaining([
        'FAL_KEY',
        'API_KEYS',
        'ADMIN_KEY',
        'POSTGRES_PASSWORD',
        'GRAFANA_ADMIN_PASSWORD',
      ]),
    );
    expect(secrets.filter(({ value }) => value.trim() !== '')).toEqual([]);
  });

  it('runs Prometheus and Grafana with the files under deploy/, healthchecked', () => {
    for (const name of ['prometheus', 'grafana']) {
      const service = compose.services[name];
      expect(service.healthcheck.test.join(' ')).toMatch(/127\.0\.0\.1:(9090|3000)\//);
      for (const volume of service.volumes as string[]) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(path.join(root, source))).toBe(true);
      }
    }
    expect(compose.services.prometheus.volumes).toContain('./deploy/prometheus:/etc/prometheus:ro');
    expect(compose.services.grafana.depends_on.prometheus.condition).toBe('service_healthy');
    expect(compose.services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD).toMatch(
      /^\$\{GRAFANA_ADMIN_PASSWORD:\?/,
    );
  });

  it('builds images from a frozen install, keeps only production dependencies and runs as a non-root user', () => {
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile --offline --prod/);
    expect(dockerfile).toMatch(/^USER node$/m);
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime).not.toMatch(/COPY --from=build/);
    // What the runtime copies (prod-deps) leaves the tests, the bench, the demo CLI and the test kit behind.
    const prodDeps = dockerfile.slice(dockerfile.indexOf('AS prod-deps'), dockerfile.indexOf('AS runtime'));
    const removed = /&& rm -rf ([^\\&\n]+)/.exec(prodDeps)?.[1]?.trim().split(/\s+/) ?? [];
    expect(removed).toEqual(
      expect.arrayContaining(['test', 'packages/bench', 'packages/cli', 'packages/testkit']),
    );
    expect(prodDeps.indexOf('rm -rf test')).toBeLessThan(prodDeps.indexOf('pnpm install'));
  });
});
