/**
 * The measured side of `npm run bench:migrate`: one `runFleet` call, in its own process so its peak
 * RSS is the runner's alone (not the fleet setup's), exactly as `npm run migrate -- up` would run it.
 * Forked by fleet-migration.bench.ts; it waits for a `go` message (the parent starts its
 * pg_stat_activity sampler first), runs, and answers with a summary over IPC.
 *
 * With `profile` on, every pg query / connect / end of the runner is timed and classified by its
 * SQL (connect, ledger read, DDL, grants, control-plane writes, …): a few µs per call against
 * calls of milliseconds. Times are as the awaiting worker sees them, so a control-plane write
 * includes its wait behind other workers' writes on the single control connection.
 */
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { runFleet, type FleetMode, type SqlMigration, type TargetResult } from '#strata/migrator';

export interface WorkerGo {
  type: 'go';
  ownerUrl: string;
  appRole: string;
  mode: FleetMode;
  concurrency: number;
  perServerCap: number;
  migrations: SqlMigration[];
  profile: boolean;
}

export interface StepStat {
  step: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

export interface DurationStat {
  kind: string;
  targets: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  totalMs: number;
}

export interface WorkerDone {
  type: 'done';
  /** Around the runFleet call, as measured by the worker. */
  wallMs: number;
  report: {
    runId: string;
    required: string;
    wallMs: number;
    ok: boolean;
    targets: number;
    byStatus: Record<string, number>;
    peakConnections: Record<string, number>;
    failures: Array<{ key: string; version?: string; error?: string }>;
  };
  /** TargetResult.durationMs (ledger read + migration; not the connect, not the control-plane write) per kind. */
  durations: DurationStat[];
  /** With `profile`: every pg call of the runner by step, slowest total first. */
  steps: StepStat[] | null;
  memory: {
    /** process.resourceUsage().maxRSS, bytes (the whole worker process lifetime). */
    maxRssBytes: number;
    /** Largest process.memoryUsage.rss() sampled every 50 ms during runFleet. */
    sampledRssMaxBytes: number;
    /** rss right before runFleet (modules loaded, nothing run). */
    rssBeforeBytes: number;
    rssSamples: number;
    heapUsedMaxBytes: number;
  };
  cpu: {
    /** Runner CPU (user + system) during runFleet, ms. */
    userMs: number;
    systemMs: number;
    /** Event-loop utilisation during runFleet (0–1): near 1 means Node itself is the bottleneck. */
    eventLoopUtilization: number;
  };
}

export type WorkerMessage = WorkerDone | { type: 'ready' } | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------
// query profiling

const quantile = (sorted: number[], q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);

function classify(text: string, migrationSql: Set<string>): string {
  if (migrationSql.has(text)) return 'DDL: the migration SQL';
  const t = text.trimStart();
  if (/control\.migration_ledger/.test(t) && /^INSERT/i.test(t)) return 'control plane: ledger upsert';
  if (/^UPDATE control\.(tenants|pools) SET schema_version/.test(t)) return 'control plane: schema_version update';
  if (/FROM control\./.test(t)) return 'control plane: list targets';
  if (/to_regclass\(/.test(t) || /strata_migrations ORDER BY version/.test(t)) return 'target ledger read (to_regclass + SELECT)';
  if (/^CREATE OR REPLACE FUNCTION pg_temp\./.test(t)) return 'helper install (pg_temp functions, in each step that calls them)';
  if (/^DROP FUNCTION IF EXISTS pg_temp\./.test(t)) return 'helper drop (before the step commits)';
  if (/^CREATE SCHEMA IF NOT EXISTS/.test(t)) return 'create schema + ledger table';
  if (t === 'BEGIN') return 'BEGIN';
  if (/pg_advisory_xact_lock/.test(t)) return 'advisory lock';
  if (/^SELECT 1 FROM .*strata_migrations WHERE version/.test(t)) return 'ledger re-check under the lock';
  if (/set_config\('search_path'/.test(t)) return 'set search_path';
  if (/^GRANT USAGE ON SCHEMA/.test(t)) return 'grants (USAGE + DML on all tables + ledger)';
  if (/^INSERT INTO .*strata_migrations/.test(t)) return 'target ledger insert';
  if (t === 'COMMIT') return 'COMMIT';
  if (t === 'ROLLBACK') return 'ROLLBACK';
  return `other: ${t.slice(0, 40)}`;
}

function instrument(migrations: SqlMigration[]): () => StepStat[] {
  const migrationSql = new Set(migrations.map((m) => m.sql));
  const samples = new Map<string, number[]>();
  const add = (step: string, ms: number) => {
    let xs = samples.get(step);
    if (!xs) samples.set(step, (xs = []));
    xs.push(ms);
  };
  const proto = Client.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrap = (method: string, stepOf: (args: unknown[]) => string) => {
    const original = proto[method];
    proto[method] = function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      const result = original.apply(this, args);
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        const step = stepOf(args);
        (result as Promise<unknown>).then(
          () => add(step, performance.now() - t0),
          () => add(`${step} (failed)`, performance.now() - t0),
        );
      }
      return result;
    };
  };
  wrap('connect', () => 'connect');
  wrap('end', () => 'disconnect');
  wrap('query', (args) => {
    const q = args[0] as string | { text?: string };
    return classify(typeof q === 'string' ? q : (q?.text ?? ''), migrationSql);
  });
  return () =>
    [...samples]
      .map(([step, xs]) => {
        const sorted = [...xs].sort((a, b) => a - b);
        const totalMs = xs.reduce((a, b) => a + b, 0);
        return {
          step,
          calls: xs.length,
          totalMs,
          meanMs: totalMs / xs.length,
          p50Ms: quantile(sorted, 0.5),
          p95Ms: quantile(sorted, 0.95),
          maxMs: sorted[sorted.length - 1],
        };
      })
      .sort((a, b) => b.totalMs - a.totalMs);
}

function durationStats(results: TargetResult[]): DurationStat[] {
  const byKind = new Map<string, number[]>();
  for (const r of results) {
    if (!byKind.has(r.target.kind)) byKind.set(r.target.kind, []);
    byKind.get(r.target.kind)!.push(r.durationMs);
  }
  return [...byKind].map(([kind, xs]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return {
      kind,
      targets: xs.length,
      p50Ms: quantile(sorted, 0.5),
      p95Ms: quantile(sorted, 0.95),
      maxMs: sorted[sorted.length - 1],
      totalMs: xs.reduce((a, b) => a + b, 0),
    };
  });
}

// ---------------------------------------------------------------------------------------------

async function run(go: WorkerGo): Promise<WorkerDone> {
  const steps = go.profile ? instrument(go.migrations) : null;
  const rssBeforeBytes = process.memoryUsage.rss();
  let sampledRssMaxBytes = rssBeforeBytes;
  let heapUsedMaxBytes = 0;
  let rssSamples = 0;
  const sampler = setInterval(() => {
    sampledRssMaxBytes = Math.max(sampledRssMaxBytes, process.memoryUsage.rss());
    heapUsedMaxBytes = Math.max(heapUsedMaxBytes, process.memoryUsage().heapUsed);
    rssSamples++;
  }, 50);

  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const report = await runFleet({
    ownerUrl: go.ownerUrl,
    appRole: go.appRole,
    mode: go.mode,
    concurrency: go.concurrency,
    perServerCap: go.perServerCap,
    migrations: go.migrations,
  }).finally(() => clearInterval(sampler));
  const wallMs = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  sampledRssMaxBytes = Math.max(sampledRssMaxBytes, process.memoryUsage.rss());

  const byStatus: Record<string, number> = {};
  for (const r of report.results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  return {
    type: 'done',
    wallMs,
    report: {
      runId: report.runId,
      required: report.required,
      wallMs: report.wallMs,
      ok: report.ok,
      targets: report.results.length,
      byStatus,
      peakConnections: report.peakConnections,
      failures: report.results
        .filter((r) => r.status !== 'migrated' && r.status !== 'current')
        .map((r) => ({ key: r.target.key, version: r.failedVersion, error: r.error ?? r.status })),
    },
    durations: durationStats(report.results),
    steps: steps ? steps() : null,
    memory: {
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      sampledRssMaxBytes,
      rssBeforeBytes,
      rssSamples,
      heapUsedMaxBytes,
    },
    cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000, eventLoopUtilization: elu.utilization },
  };
}

function main(): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('fleet-migration.worker must be forked with an IPC channel (run fleet-migration.bench.js)');
  process.on('disconnect', () => process.exit(1)); // the parent went away: do not run on unsupervised
  process.once('message', (msg: WorkerGo) => {
    if (msg?.type !== 'go') {
      send({ type: 'error', message: `unexpected message ${JSON.stringify(msg)}` });
      return;
    }
    run(msg).then(
      (done) => send(done, () => process.exit(0)),
      (err) => send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
    );
  });
  send({ type: 'ready' });
}

main();
