import { SERVICE_NAMES, type ServiceName } from '@aisha/testkit';
import { GATEWAY_LOAD, type GatewayHttpResult } from './gateway-http';
import type { LoadResult } from './http-load';
import { PIPELINE_LOAD, type PipelineResult } from './pipeline';
import type { ProcessUsage } from './rss';
import type { LogFindings } from './service-logs';
import { WEBHOOK_LOAD, type WebhookIngestResult } from './webhook-ingest';

export interface BenchResults {
  machine: { cpus: number; node: string; startedAt: string; loadAverageAtStart: number };
  totalS: number;
  gateway: GatewayHttpResult & { ratio: { perSecond: number; p99: number } };
  webhook: WebhookIngestResult & { ratio: { perSecond: number; p99: number } };
  pipeline: PipelineResult & { ratioToGatewayIntake: number };
  rss: ProcessUsage & { phases: string[] };
  logs: Record<ServiceName, LogFindings>;
  /** Why the run does not count, if it does not: non-2xx answers, generations left unfinished. */
  problems: string[];
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(1) : int(n));
const times = (n: number) => `${n.toFixed(2)}×`;

/** The table `npm run bench` prints: ratios first, the raw figures beside them. */
export function formatReport(r: BenchResults): string {
  const out: string[] = [];
  out.push(
    `aisha bench — ${r.machine.cpus} CPUs, node ${r.machine.node}, ${r.machine.startedAt}, ran ${r.totalS.toFixed(0)} s, load average at start ${r.machine.loadAverageAtStart.toFixed(1)}`,
    '',
    `1. gateway POST /v1/generations — ${GATEWAY_LOAD.connections} connections, ${GATEWAY_LOAD.durationS} s each after ${GATEWAY_LOAD.warmupS} s of warm-up`,
    ...comparison(
      'req/s',
      ['bare: express.json + queue.add', r.gateway.bare],
      ['gateway', r.gateway.gateway],
      ['gateway / bare', r.gateway.ratio],
    ),
    `   workers paused while measured (like the bare queue, nothing consumes): ${int(r.gateway.backlog.generations)} generations left queued`,
    '',
    `2. webhook-ingest, signed deliveries — ${WEBHOOK_LOAD.connections} connections, ${int(WEBHOOK_LOAD.deliveries)} unique deliveries each after ${int(WEBHOOK_LOAD.warmup)} of warm-up`,
    ...comparison(
      'deliveries/s',
      ['bare: sha256 + ed25519 + queue.add', r.webhook.bare],
      ['webhook-ingest', r.webhook.ingest],
      ['ingest / bare', r.webhook.ratio],
    ),
    `   webhook-ingest counted: ${Object.entries(r.webhook.ingestOutcomes)
      .map(([outcome, n]) => `${outcome} ${int(n)}`)
      .join(', ')}`,
    '',
    `3. pipeline — ${int(PIPELINE_LOAD.generations)} generations over HTTP (${PIPELINE_LOAD.connections} at a time), fal-sim at 0 ms, until completed in PostgreSQL`,
    ...indent(
      labelled([
        [
          'posted',
          `${int(r.pipeline.posting.ok)} accepted in ${r.pipeline.posting.durationS.toFixed(1)} s (${int(r.pipeline.posting.okPerSecond)} req/s), non-2xx ${r.pipeline.posting.non2xx}, errors ${r.pipeline.posting.errors}`,
        ],
        [
          'completed',
          `${int(r.pipeline.counts.completed)} of ${int(r.pipeline.counts.total)} (failed ${r.pipeline.counts.failed}, open ${r.pipeline.counts.open})`,
        ],
        [
          'end to end',
          `${int(r.pipeline.generationsPerSecond)} generations/s (first created_at → last finished_at: ${r.pipeline.spanS.toFixed(1)} s)`,
        ],
        ['pipeline / gateway', `${times(r.pipeline.ratioToGatewayIntake)} the gateway's req/s in 1.`],
        [
          'overhead',
          `p50 ${ms(r.pipeline.overheadMs.p50)} ms, p99 ${ms(r.pipeline.overheadMs.p99)} ms, max ${ms(r.pipeline.overheadMs.max)} ms (finished_at − created_at)`,
        ],
        [
          'peak waiting',
          `${int(r.pipeline.peakWaiting.generate)} jobs in generate (workers), ${int(r.pipeline.peakWaiting.falEvents)} in fal-events (recorder)`,
        ],
      ]),
    ),
    '',
    '4. RSS in MB — VmRSS sampled every 250 ms: peak while idle after start and in each load; VmHWM is the kernel’s peak',
    ...indent(rssTable(r.rss)),
    '',
    `5. CPU, % of one core over each phase (${r.machine.cpus} cores = ${r.machine.cpus * 100} %)`,
    ...indent(cpuTable(r.rss)),
    '',
    'service logs (LOG_LEVEL=warn): ' +
      SERVICE_NAMES.map((name) => `${name} ${r.logs[name].lines}`).join(', ') +
      ' lines',
  );
  for (const name of SERVICE_NAMES) {
    for (const { message, count } of r.logs[name].messages) out.push(`   ${name} ×${count}: ${message}`);
  }
  if (r.problems.length) out.push('', 'PROBLEMS:', ...r.problems.map((p) => `   ${p}`));
  return out.join('\n');
}

/** A load benchmark against its bare baseline: both rows, then the ratios. */
function comparison(
  unit: string,
  [bareLabel, bare]: [string, LoadResult],
  [oursLabel, ours]: [string, LoadResult],
  [ratioLabel, ratio]: [string, { perSecond: number; p99: number }],
): string[] {
  return indent(
    table([
      ['', unit, 'p50 ms', 'p99 ms', 'non-2xx', 'errors'],
      loadRow(bareLabel, bare),
      loadRow(oursLabel, ours),
      [ratioLabel, times(ratio.perSecond), '', times(ratio.p99), '', ''],
    ]),
  );
}

function loadRow(label: string, load: LoadResult): string[] {
  return [
    label,
    int(load.okPerSecond),
    ms(load.latencyMs.p50),
    ms(load.latencyMs.p99),
    String(load.non2xx),
    String(load.errors),
  ];
}

function rssTable(rss: BenchResults['rss']): string[] {
  const loads = rss.phases.filter((phase) => phase !== 'idle');
  const rows = [['', 'idle', ...loads, 'VmHWM', 'peak / idle']];
  for (const [name, service] of Object.entries(rss.services)) {
    const idle = service.peakMb.idle ?? 0;
    const peak = Math.max(...loads.map((phase) => service.peakMb[phase] ?? 0), service.hwmMb);
    rows.push([
      name,
      idle.toFixed(0),
      ...loads.map((phase) => (service.peakMb[phase] ?? 0).toFixed(0)),
      service.hwmMb.toFixed(0),
      idle ? times(peak / idle) : '',
    ]);
  }
  return table(rows);
}

function cpuTable(rss: BenchResults['rss']): string[] {
  const loads = rss.phases.filter((phase) => phase !== 'idle');
  const percent = (cpuS: (phase: string) => number) =>
    loads.map((phase) => `${((cpuS(phase) / (rss.phaseS[phase] ?? 1)) * 100).toFixed(0)} %`);
  const ours = (phase: string) =>
    Object.values(rss.services).reduce((sum, service) => sum + (service.cpuS[phase] ?? 0), 0);
  const groups = (phase: string) =>
    Object.values(rss.groupCpuS).reduce((sum, cpuS) => sum + (cpuS[phase] ?? 0), 0);
  const machine = (phase: string) => rss.machineCpuS[phase] ?? 0;
  return table([
    ['', ...loads.map((phase) => `${phase} (${(rss.phaseS[phase] ?? 0).toFixed(0)} s)`)],
    ...Object.entries(rss.services).map(([name, service]) => [name, ...percent((p) => service.cpuS[p] ?? 0)]),
    ['the above', ...percent(ours)],
    ...Object.entries(rss.groupCpuS).map(([name, cpuS]) => [name, ...percent((p) => cpuS[p] ?? 0)]),
    ['anything else', ...percent((p) => machine(p) - ours(p) - groups(p))],
    ['machine', ...percent(machine)],
  ]);
}

/** Columns padded to their widest cell: the first left-aligned, numbers right-aligned. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!)))
      .join('   ')
      .trimEnd(),
  );
}

function labelled(pairs: Array<[string, string]>): string[] {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, text]) => `${label.padEnd(width)}   ${text}`);
}

function indent(lines: string[]): string[] {
  return lines.map((line) => `   ${line}`);
}
