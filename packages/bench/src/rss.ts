import { readdirSync, readFileSync } from 'node:fs';

export interface ServiceRss {
  /** Highest VmRSS sampled in each phase, in MB. */
  peakMb: Record<string, number>;
  /** The kernel's own high-water mark of the process's RSS (VmHWM) at the end, in MB. */
  hwmMb: number;
  /** CPU time (user + system) the process spent in each phase, in seconds: where a load's time went. */
  cpuS: Record<string, number>;
}

export interface ProcessUsage {
  services: Record<string, ServiceRss>;
  /** How long each phase lasted, in seconds. */
  phaseS: Record<string, number>;
  /**
   * CPU time every process of the machine spent in each phase: ours, PostgreSQL, Redis, and whatever else runs
   * (a test suite in another shell makes every figure of the run noisy, and shows here).
   */
  machineCpuS: Record<string, number>;
  /** CPU time, by phase, of processes found by their command line (PostgreSQL's backends for this run). */
  groupCpuS: Record<string, Record<string, number>>;
}

const SAMPLE_EVERY_MS = 250;
// /proc counts CPU time in clock ticks: 100 a second on Linux (`getconf CLK_TCK`).
const TICKS_PER_SECOND = 100;

/**
 * Samples VmRSS of each service process every 250 ms from /proc, keeping the peak of each phase (idle, the
 * gateway load, …). Between samples a spike can pass unseen: VmHWM at the end is the kernel's exact peak.
 * Also reads each process's CPU time, and the machine's, when a phase starts and ends.
 */
export class RssSampler {
  private phase = 'idle';
  private phaseStartedAt = Date.now();
  private cpuAtPhaseStart: Record<string, number>;
  private machineAtPhaseStart = machineBusySeconds();
  private readonly peaks = new Map<string, Map<string, number>>();
  private groupsAtPhaseStart: Record<string, Map<number, number>>;
  private readonly usage: ProcessUsage = { services: {}, phaseS: {}, machineCpuS: {}, groupCpuS: {} };
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: Record<string, number>,
    private readonly groups: Record<string, RegExp> = {},
  ) {
    for (const name of Object.keys(pids)) this.usage.services[name] = { peakMb: {}, hwmMb: 0, cpuS: {} };
    for (const name of Object.keys(groups)) this.usage.groupCpuS[name] = {};
    this.sample();
    this.cpuAtPhaseStart = this.cpuNow();
    this.groupsAtPhaseStart = this.groupsNow();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
  }

  /** Later samples count towards `phase`. */
  enter(phase: string): void {
    this.closePhase();
    this.phase = phase;
  }

  /** Stops sampling and reads VmHWM; call it before the processes stop. */
  stop(): ProcessUsage {
    this.closePhase();
    clearInterval(this.timer);
    for (const [name, pid] of Object.entries(this.pids)) {
      this.usage.services[name]!.hwmMb = statusKb(pid, 'VmHWM') / 1024;
    }
    return this.usage;
  }

  private closePhase(): void {
    this.sample();
    const cpu = this.cpuNow();
    const machine = machineBusySeconds();
    for (const name of Object.keys(this.pids)) {
      this.usage.services[name]!.cpuS[this.phase] = cpu[name]! - this.cpuAtPhaseStart[name]!;
    }
    this.usage.machineCpuS[this.phase] = machine - this.machineAtPhaseStart;
    const groups = this.groupsNow();
    for (const [name, members] of Object.entries(groups)) {
      const before = this.groupsAtPhaseStart[name]!;
      // A backend born during the phase counts from zero; one that ended during it is lost (pools keep theirs).
      this.usage.groupCpuS[name]![this.phase] = [...members].reduce(
        (sum, [pid, cpuS]) => sum + cpuS - (before.get(pid) ?? 0),
        0,
      );
    }
    this.groupsAtPhaseStart = groups;
    this.usage.phaseS[this.phase] = (Date.now() - this.phaseStartedAt) / 1000;
    this.cpuAtPhaseStart = cpu;
    this.machineAtPhaseStart = machine;
    this.phaseStartedAt = Date.now();
  }

  private sample(): void {
    for (const [name, pid] of Object.entries(this.pids)) {
      const peaks = this.usage.services[name]!.peakMb;
      peaks[this.phase] = Math.max(peaks[this.phase] ?? 0, statusKb(pid, 'VmRSS') / 1024);
    }
  }

  private cpuNow(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  }

  /** Each group's processes now, with their CPU time so far; one scan of /proc for all groups. */
  private groupsNow(): Record<string, Map<number, number>> {
    const found = Object.fromEntries(
      Object.keys(this.groups).map((name) => [name, new Map<number, number>()]),
    );
    if (Object.keys(this.groups).length === 0) return found;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue; // ended while we looked
      }
      for (const [name, pattern] of Object.entries(this.groups)) {
        if (pattern.test(cmdline)) found[name]!.set(Number(entry), cpuSeconds(Number(entry)));
      }
    }
    return found;
  }
}

/** A `kB` line of /proc/<pid>/status; 0 once the process is gone. */
function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(
      new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'),
    );
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime + stime: fields 14 and 15 of /proc/<pid>/stat, counted after the command name (which may hold spaces). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Every CPU's time not idle nor waiting on I/O, from the first line of /proc/stat. */
function machineBusySeconds(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}
