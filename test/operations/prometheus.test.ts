import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { createFal, QUEUES } from '@aisha/shared';
import { uploadSamplePhotos } from '@aisha/cli';
import { freePort, launchSystem, SERVICE_NAMES, waitFor, type RunningSystem } from '@aisha/testkit';
import { ensurePrometheus } from './promtool';

const DEPLOY = path.resolve(__dirname, '../../deploy');
const CONFIG = path.join(DEPLOY, 'prometheus/prometheus.yml');
const RULES = path.join(DEPLOY, 'prometheus/rules.yml');
const DASHBOARD = path.join(DEPLOY, 'grafana/dashboards/aisha.json');

// prom-client's own default gauges carry a `_total` suffix that promtool's linter dislikes; ours must be clean.
const PROM_CLIENT_LINT = new Set([
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
]);

const tools = ensurePrometheus();
if ('missing' in tools) console.warn(`Prometheus tests skipped: ${tools.missing}`);
const withPrometheus = 'missing' in tools ? describe.skip : describe;

function promtool(args: string[], input?: string) {
  const result = spawnSync('promtool', args, { input, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

withPrometheus('the Prometheus files (promtool)', () => {
  it('check config: the scrape configuration and the rule files it names are valid', () => {
    const result = promtool(['check', 'config', CONFIG]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('check rules: recording rules and alerts are valid', () => {
    const result = promtool(['check', 'rules', RULES]);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  it('test rules: every alert fires when it should and stays quiet when it should', () => {
    const result = promtool(['test', 'rules', path.join(DEPLOY, 'prometheus/rules.test.yml')]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('scrapes every service of the design, one job each', () => {
    const jobs = parse(readFileSync(CONFIG, 'utf8')).scrape_configs.map(
      (c: { job_name: string }) => c.job_name,
    );
    expect([...jobs].sort()).toEqual([...SERVICE_NAMES].sort());
  });
});

withPrometheus('a live Prometheus scraping the running system', () => {
  let system: RunningSystem;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl = '';
  let workDir = '';
  const scrapes = new Map<string, string>();

  async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; data: { result: [] }; error?: string };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  }
  const scalar = async (expr: string) => Number((await query(expr))[0]?.value[1] ?? NaN);

  beforeAll(async () => {
    system = await launchSystem({
      sim: { FAL_SIM_QUEUE_MS: '20', FAL_SIM_TRAINING_MS: '100', FAL_SIM_GENERATION_MS: '20' },
      env: { LOG_LEVEL: 'warn' },
    });
    // The committed configuration, with only the targets (and the pace) changed to this run's.
    workDir = mkdtempSync(path.join(os.tmpdir(), 'aisha-prometheus-'));
    const config = parse(readFileSync(CONFIG, 'utf8'));
    config.global = { scrape_interval: '1s', evaluation_interval: '1s' };
    config.rule_files = [RULES];
    for (const job of config.scrape_configs) {
      delete job.dns_sd_configs;
      job.static_configs = [
        { targets: [new URL(system.urls[job.job_name as keyof typeof system.urls]).host] },
      ];
    }
    writeFileSync(path.join(workDir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(workDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      async () => (await fetch(`${prometheusUrl}/-/ready`).catch(() => null))?.ok,
      30_000,
      'Prometheus to be ready',
    );
  }, 90_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await system?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('sees every target up, and the training, fal and queue series move with the work', async () => {
    const targets = await waitFor(
      async () => {
        const res = await fetch(`${prometheusUrl}/api/v1/targets`);
        const active = (
          (await res.json()) as { data: { activeTargets: { labels: { job: string }; health: string }[] } }
        ).data.activeTargets;
        return active.length === SERVICE_NAMES.length && active.every((t) => t.health === 'up')
          ? active
          : undefined;
      },
      30_000,
      'every target to be up',
    );
    expect(targets.map((t) => t.labels.job).sort()).toEqual([...SERVICE_NAMES].sort());

    // Two trainings, one of each type.
    const sim = system.urls['fal-sim'];
    const fal = createFal({ key: 'fal-sim-key', queueUrl: sim, restUrl: sim });
    const avatars: string[] = [];
    for (const trainingType of ['portrait', 'style']) {
      const avatar = await system.api('POST', '/v1/avatars', {
        name: trainingType,
        training_type: trainingType,
        images_data_url: await uploadSamplePhotos(fal, 3),
      });
      await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
      avatars.push(avatar.body.id);
    }
    await waitFor(
      async () => (await scalar('sum(gateway_outcomes_total{entity="training",outcome="completed"})')) === 2,
      30_000,
      'Prometheus to count two completed trainings',
    );
    await waitFor(
      async () => (await scalar('sum(fal_calls_total{operation="submit",outcome="ok"})')) >= 2,
      30_000,
      'Prometheus to count the two trainings submitted to fal',
    );

    // Generations posted while the generation worker is down wait in the queue, and the gauge shows them.
    await system.kill('ultra-worker');
    for (let i = 0; i < 4; i++) {
      const generation = await system.api('POST', '/v1/generations', {
        avatar_id: avatars[i % 2],
        prompt: 'p',
      });
      expect(generation.status).toBe(202);
    }
    const waiting = `gateway_queue_jobs{queue="${QUEUES.generate}",state="waiting"}`;
    await waitFor(async () => (await scalar(waiting)) === 4, 30_000, 'the waiting gauge to show 4');
    await system.start('ultra-worker');
    await waitFor(async () => (await scalar(waiting)) === 0, 30_000, 'the waiting gauge to drop to 0');
    await waitFor(
      async () =>
        (await scalar('sum(gateway_outcomes_total{entity="generation",outcome="completed"})')) === 4,
      30_000,
      'Prometheus to count four completed generations',
    );
    // The recording rules evaluate on the real series.
    await waitFor(
      async () => (await query('aisha:training_success_ratio:rate1h')).length === 2,
      30_000,
      'the training success ratio by type',
    );
    expect(await scalar('max(fal_breaker_state)')).toBe(0);
  }, 120_000);

  it('loads and evaluates every rule without error, and every recording rule yields series from the real scrapes', async () => {
    type Rule = { name: string; type: string; health: string; lastError?: string; lastEvaluation: string };
    const ruleFile = parse(readFileSync(RULES, 'utf8')).groups as { name: string; rules: unknown[] }[];
    const loaded = await waitFor(
      async () => {
        const body = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
          data: { groups: { name: string; rules: Rule[] }[] };
        };
        const rules = body.data.groups.flatMap((g) => g.rules);
        // Wait until each rule has been evaluated at least once (evaluation_interval is 1 s here).
        return rules.length > 0 && rules.every((r) => !r.lastEvaluation.startsWith('0001'))
          ? body.data
          : undefined;
      },
      30_000,
      'every rule to be evaluated',
    );
    expect(loaded.groups.map((g) => `${g.name}: ${g.rules.length}`).sort()).toEqual(
      ruleFile.map((g) => `${g.name}: ${g.rules.length}`).sort(),
    );
    const unhealthy = loaded.groups
      .flatMap((g) => g.rules)
      .filter((r) => r.health !== 'ok' || r.lastError)
      .map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`);
    expect(unhealthy).toEqual([]);
    // A rule naming a mistyped series still evaluates "ok" to nothing; the work above feeds every recording rule.
    const recorded = loaded.groups.flatMap((g) => g.rules).filter((r) => r.type === 'recording');
    // A rate needs two scrapes after the work, and the rule one more evaluation: wait for them, then say which.
    const emptyRules = async () => {
      const empty: string[] = [];
      for (const rule of recorded) if ((await query(rule.name)).length === 0) empty.push(rule.name);
      return empty;
    };
    await waitFor(async () => (await emptyRules()).length === 0, 20_000, 'every recording rule').catch(
      () => undefined,
    );
    expect(await emptyRules()).toEqual([]);
  }, 60_000);

  it('passes promtool check metrics on a live scrape of each service', async () => {
    for (const name of SERVICE_NAMES) {
      const text = await (await fetch(`${system.urls[name]}/metrics`)).text();
      scrapes.set(name, text);
      const problems = promtool(['check', 'metrics'], text)
        .output.split('\n')
        .filter((line) => line.trim() && !PROM_CLIENT_LINT.has(line.trim()));
      expect({ service: name, problems }).toEqual({ service: name, problems: [] });
    }
  });

  it('names only series that exist, in every rule and dashboard panel', () => {
    const families = new Set(
      [...scrapes.values()].flatMap((text) => [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]!)),
    );
    const rules = parse(readFileSync(RULES, 'utf8')).groups.flatMap((g: { rules: [] }) => g.rules);
    const recorded = new Set(rules.flatMap((r: { record?: string }) => (r.record ? [r.record] : [])));
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    const exprs: string[] = [
      ...rules.map((r: { expr: string }) => r.expr),
      ...dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) =>
        (p.targets ?? []).map((t) => t.expr),
      ),
    ];
    expect(exprs.length).toBeGreaterThan(20);
    const unknown = new Set<string>();
    for (const expr of exprs) {
      // Series names: identifiers of ours followed by a selector, a range or the end of a function argument.
      for (const [, name] of expr.matchAll(
        /\b((?:gateway|fal|worker|webhook|process|nodejs|aisha)[a-z0-9_:]*)\b/g,
      )) {
        const family = name!.replace(/_(bucket|sum|count)$/, '');
        if (!families.has(family) && !families.has(name!) && !recorded.has(name!)) unknown.add(name!);
      }
    }
    expect([...unknown]).toEqual([]);
  });
});
