import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Client } from 'pg';

/**
 * Where the CPU goes while a scenario runs (Linux /proc; elsewhere every reading is null): the API
 * child, the PostgreSQL backends serving the bench's databases, this load-generator process, and
 * how busy the whole machine was (and how much of that was somebody else). Divided by completed
 * requests it tells whether a tier is slower because it burns more CPU (Node or Postgres) or
 * because it waits (round trips, pool queueing).
 */
export interface CpuUsagePerRequest {
  /** µs of CPU per completed request. */
  serverUs: number | null;
  postgresUs: number | null;
  benchUs: number;
  /** Share of all cores that were busy (0–100). */
  machineBusyPct: number | null;
  /** Share of all cores busy with anything but the API, our PostgreSQL backends and the load generator: noise. */
  otherBusyPct: number | null;
}

/** µs per clock tick of /proc's CPU counters. */
export let tickUs = 10_000;
try {
  tickUs = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
} catch {
  // keep 100 Hz
}

/** utime + stime of a process, in clock ticks; null when it is gone, not `comm`, or /proc is missing. */
export function procTicks(pid: number, comm?: string): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (comm && stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== comm) return null;
    // Fields after the parenthesised command name: utime and stime are the 14th and 15th fields.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return null;
  }
}

export function machineTicks(): { busy: number; total: number } | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = cpu[3] + (cpu[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/**
 * Measures one scenario run. PostgreSQL backends come and go (the shared pool recycles
 * connections after BRIDGE_CONN_MAX_USES), so the backends of the bench's databases are polled
 * from pg_stat_activity while the run lasts; a backend that exits loses at most one poll interval
 * of CPU. Backends of other databases (other people's tests on a shared server) count as "other".
 */
export class CpuMeter {
  private readonly backends = new Map<number, { start: number; last: number }>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private inFlight = false;
  private machineStart: { busy: number; total: number } | null = null;
  private serverStart: number | null = null;
  private benchStart = process.cpuUsage();
  /** Backends listed / found in this machine's /proc: PostgreSQL may run elsewhere. */
  private listed = 0;
  private found = 0;

  private constructor(
    private readonly client: Client | null,
    private readonly serverPid: number | undefined,
    private readonly databases: string[],
  ) {}

  /** `adminUrl` is only used to list backends; its own backend is not counted. */
  static async open(adminUrl: string, serverPid: number | undefined, databases: string[]): Promise<CpuMeter> {
    let client: Client | null = new Client({ connectionString: adminUrl, application_name: 'strata-bench-cpu-meter' });
    try {
      await client.connect();
    } catch {
      client = null;
    }
    return new CpuMeter(client, serverPid, databases);
  }

  async start(): Promise<void> {
    this.backends.clear();
    this.listed = this.found = 0;
    await this.poll(true);
    this.machineStart = machineTicks();
    this.serverStart = this.serverPid ? procTicks(this.serverPid) : null;
    this.benchStart = process.cpuUsage();
    this.timer = setInterval(() => {
      // One query at a time on the meter's connection: on a busy box a poll can outlast the
      // interval, and node-postgres deprecates queueing a query behind a running one.
      if (this.inFlight) return;
      this.inFlight = true;
      this.polling = this.poll(false).finally(() => {
        this.inFlight = false;
      });
    }, 250);
  }

  async stop(requests: number): Promise<CpuUsagePerRequest> {
    clearInterval(this.timer);
    const machineEnd = machineTicks();
    const serverEnd = this.serverPid ? procTicks(this.serverPid) : null;
    const bench = process.cpuUsage(this.benchStart);
    await this.polling;
    await this.poll(false);

    const benchMicros = bench.user + bench.system;
    const serverTicks = serverEnd !== null && this.serverStart !== null ? serverEnd - this.serverStart : null;
    const pgVisible = this.client !== null && (this.found > 0 || this.listed === 0);
    const pgTicks = pgVisible ? [...this.backends.values()].reduce((sum, b) => sum + (b.last - b.start), 0) : null;
    const span = this.machineStart && machineEnd ? machineEnd.total - this.machineStart.total : 0;
    const machine = span > 0 ? (100 * (machineEnd!.busy - this.machineStart!.busy)) / span : null;
    const ours = serverTicks !== null && pgTicks !== null ? serverTicks + pgTicks + benchMicros / tickUs : null;
    const per = (ticks: number | null) => (ticks === null || requests <= 0 ? null : (ticks * tickUs) / requests);
    return {
      serverUs: per(serverTicks),
      postgresUs: per(pgTicks),
      benchUs: requests > 0 ? benchMicros / requests : 0,
      machineBusyPct: machine,
      otherBusyPct: machine !== null && ours !== null && span > 0 ? Math.max(0, machine - (100 * ours) / span) : null,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    await this.client?.end().catch(() => undefined);
  }

  private async poll(initial: boolean): Promise<void> {
    if (!this.client) return;
    let pids: number[];
    try {
      const res = await this.client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()`,
        [this.databases],
      );
      pids = res.rows.map((r) => r.pid);
    } catch {
      return;
    }
    for (const pid of pids) {
      this.listed++;
      // Null when PostgreSQL runs on another machine, or the backend just exited.
      const ticks = procTicks(pid, 'postgres');
      if (ticks === null) continue;
      this.found++;
      const seen = this.backends.get(pid);
      if (seen) seen.last = ticks;
      // Present at the start: count from now. Born during the run: all of its CPU is the run's.
      else this.backends.set(pid, { start: initial ? ticks : 0, last: ticks });
    }
  }
}
