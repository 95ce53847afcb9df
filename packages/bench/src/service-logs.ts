import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SERVICE_NAMES, type RunningSystem, type ServiceName } from '@aisha/testkit';

export interface LogFindings {
  /** Lines each service wrote at LOG_LEVEL=warn: warnings, errors, anything printed outside the logger. */
  lines: number;
  /** The distinct messages among them, most frequent first, with their counts. */
  messages: Array<{ message: string; count: number }>;
}

/** What the services said during the run; read before `stop()`, which deletes the log directory. */
export function readServiceLogs(system: RunningSystem): Record<ServiceName, LogFindings> {
  return Object.fromEntries(SERVICE_NAMES.map((name) => [name, findings(system.logDir, name)])) as Record<
    ServiceName,
    LogFindings
  >;
}

function findings(logDir: string, name: ServiceName): LogFindings {
  let text = '';
  try {
    text = readFileSync(path.join(logDir, `${name}.log`), 'utf8');
  } catch {
    return { lines: 0, messages: [] };
  }
  const lines = text.split('\n').filter((line) => line.trim().length > 0);
  const counts = new Map<string, number>();
  for (const line of lines) {
    const message = messageOf(line);
    counts.set(message, (counts.get(message) ?? 0) + 1);
  }
  const messages = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([message, count]) => ({ message, count }));
  return { lines: lines.length, messages };
}

// pino writes JSON lines; anything else (a stack trace, a warning of node's) is kept as it is.
function messageOf(line: string): string {
  try {
    const entry = JSON.parse(line) as { level?: number | string; msg?: string };
    return `${entry.level ?? '?'}: ${entry.msg ?? line}`.slice(0, 160);
  } catch {
    return line.slice(0, 160);
  }
}
