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
    for (const name of ['gateway', 'webhook-ingest', 'portrait-worker', 'pro-worker', 'ultra-worker']) {
      expect(compose.services[name].depends_on.redis.condition).toBe('service_healthy');
      expect(compose.services[name].depends_on.postgres.condition).toBe('service_healthy');
    }
    expect(compose.services['fal-sim'].profiles).toEqual(['sim']);
    expect(compose.services.gateway.depends_on.migrate.condition).toBe('service_completed_successfully');
    expect(dockerfileTargets).toContain(compose.services.migrate.build.target);
  });

  it('takes secrets from the environment, never from the file', () => {
    const text = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    expect(text).toMatch(/FAL_KEY: \$\{FAL_KEY:-\}/);
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    expect(example).toMatch(/^FAL_KEY=$/m);
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
  });
});
