import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { CONTROL_SCHEMA } from './database-bootstrap';
import { listFleetTargets, serverOf, type FleetTarget } from './fleet.targets';
import { appliedVersions, driftOf, MigrationFailedError, migrateSchema, type AppliedMigration, type DriftedMigration } from './schema-migrator';
import { loadMigrations, type SqlMigration } from './sql-migrations.loader';

export type FleetMode = 'status' | 'plan' | 'up';

export interface FleetRunOptions {
  /** Owner connection to the control-plane database; its credentials are used on every server. */
  ownerUrl: string;
  /** The data-plane role that gets DML on new tables. */
  appRole: string;
  mode: FleetMode;
  /** Only this tenant's target (a pool tenant's target is its pool's shared schema). */
  tenantSlug?: string;
  /** Migrate this tenant's target first, alone; stop everything if it fails. */
  canary?: string;
  /** Targets migrated at once across the fleet. */
  concurrency?: number;
  /** Connections the runner may hold on one server, the control-plane connection included. */
  perServerCap?: number;
  /** Override the migration files (tests, the bench). */
  migrations?: SqlMigration[];
  /** Override the control-plane migration files (tests). */
  controlMigrations?: SqlMigration[];
  /** Once, before any target is visited: every target the run will go through (canary included). */
  onTargetsListed?: (targets: readonly FleetTarget[]) => void;
  onTargetDone?: (result: TargetResult) => void;
}

/**
 * `drifted`: an applied step's file changed since it ran (checksum drift). Reported by every mode;
 * `up` applies nothing more to such a target until the file is restored or the drift repaired.
 */
export type TargetStatus = 'migrated' | 'current' | 'behind' | 'drifted' | 'failed' | 'not-run';

export interface TargetResult {
  target: FleetTarget;
  status: TargetStatus;
  /** Newest version applied before this run, and after it. */
  before: string;
  after: string;
  applied: AppliedMigration[];
  pending: string[];
  error?: string;
  failedVersion?: string;
  durationMs: number;
  /** From the central ledger (status mode): the last recorded failure of this target, if any. */
  lastError?: { version: string; error: string; at: Date };
  /** Applied steps whose file changed since they ran (status `drifted`). */
  drifted?: DriftedMigration[];
}

/** The control-plane schema's own migrations, checked in every run: pending steps and drift. */
export interface ControlPlaneState {
  applied: string;
  pending: string[];
  drifted: DriftedMigration[];
}

export interface FleetReport {
  runId: string;
  mode: FleetMode;
  required: string;
  results: TargetResult[];
  /** Most connections the runner held at once on each server. */
  peakConnections: Record<string, number>;
  wallMs: number;
  /** Every target migrated or current, and no control-plane migration changed after it ran. */
  ok: boolean;
  canaryFailed: boolean;
  control: ControlPlaneState;
}

/** Counting semaphore: the per-server connection cap. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  held = 0;
  peak = 0;
  constructor(cap: number) {
    this.free = cap;
  }
  async take(): Promise<void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    this.held++;
    this.peak = Math.max(this.peak, this.held);
  }
  give(): void {
    this.held--;
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const newest = (versions: Iterable<string>): string => [...versions].sort().pop() ?? '0000';

/**
 * Runs the tenant migrations over the whole fleet (or one tenant, or a canary first).
 *
 * Targets are grouped by database: a worker connects to a database once and drains that
 * database's targets (1,000 bridge schemas cost a handful of connections, not 1,000), while a
 * per-server semaphore keeps the runner's connections on any server at or under the cap. A failing
 * target is recorded and the run goes on; the report lists every target and the exit is non-zero.
 * A rerun finds exactly the failed and pending targets again, since each target's own ledger says
 * what it has.
 */
export async function runFleet(opts: FleetRunOptions): Promise<FleetReport> {
  const started = Date.now();
  const runId = randomUUID();
  const migrations = opts.migrations ?? loadMigrations('tenant');
  const required = newest(migrations.map((m) => m.version));
  const cap = Math.max(2, opts.perServerCap ?? 10);
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const owner = new URL(opts.ownerUrl);
  const slots = new Map<string, Slots>();
  const slotsOf = (server: string) => {
    let s = slots.get(server);
    if (!s) slots.set(server, (s = new Slots(cap)));
    return s;
  };

  // The control-plane connection counts against its server's cap like any other.
  const controlServer = `${owner.hostname}:${owner.port || 5432}`;
  await slotsOf(controlServer).take();
  const control = new Client({ connectionString: opts.ownerUrl, application_name: 'strata-migrate' });
  await control.connect();
  try {
    const all = await listFleetTargets(control, { tenantSlug: opts.tenantSlug });
    opts.onTargetsListed?.(all);
    const lastErrors = opts.mode === 'status' ? await readLastErrors(control) : new Map();
    const controlState = await readControlPlaneState(control, opts.controlMigrations ?? loadMigrations('control'));
    // Workers finish concurrently; their records go through the one control connection in turn.
    let recorded: Promise<unknown> = Promise.resolve();
    const record = (r: TargetResult): Promise<void> => {
      if (opts.mode !== 'up') return Promise.resolve();
      const next = recorded.then(() => recordOutcome(control, runId, r));
      recorded = next.catch(() => undefined);
      return next;
    };

    const connect = (t: FleetTarget) => {
      const url = new URL(opts.ownerUrl);
      url.hostname = t.host;
      url.port = String(t.port);
      url.pathname = `/${encodeURIComponent(t.database)}`;
      return new Client({ connectionString: url.toString(), application_name: 'strata-migrate' });
    };

    const runOn = async (client: Client, t: FleetTarget): Promise<TargetResult> => {
      const t0 = Date.now();
      const applied: AppliedMigration[] = [];
      let done = new Map<string, string>();
      try {
        done = await appliedVersions(client, t.schema);
        const pending = migrations.filter((m) => !done.has(m.version)).map((m) => m.version);
        const before = newest(done.keys());
        // Read with the ledger, so every mode reports it at once, not only an `up` with steps to run.
        const drifted = driftOf(done, migrations);
        if (drifted.length) {
          return { target: t, status: 'drifted', before, after: before, applied, pending, drifted, durationMs: Date.now() - t0, lastError: lastErrors.get(t.key) };
        }
        if (opts.mode !== 'up' || pending.length === 0) {
          return {
            target: t,
            status: pending.length ? 'behind' : 'current',
            before,
            after: before,
            applied,
            pending,
            durationMs: Date.now() - t0,
            lastError: lastErrors.get(t.key),
          };
        }
        await migrateSchema(client, { schema: t.schema, set: 'tenant', grantTo: opts.appRole, migrations, onApplied: (m) => applied.push(m) });
        return { target: t, status: 'migrated', before, after: required, applied, pending: [], durationMs: Date.now() - t0 };
      } catch (err) {
        const failed = err instanceof MigrationFailedError ? err : undefined;
        const landed = new Set([...done.keys(), ...applied.map((a) => a.version)]);
        return {
          target: t,
          status: 'failed',
          before: newest(done.keys()),
          after: newest(landed),
          applied,
          pending: migrations.filter((m) => !landed.has(m.version)).map((m) => m.version),
          error: failed ? String((failed.cause as Error)?.message ?? failed.cause) : (err as Error).message,
          failedVersion: failed?.version ?? migrations.find((m) => !landed.has(m.version))?.version,
          durationMs: Date.now() - t0,
        };
      }
    };

    const results: TargetResult[] = [];
    const finish = async (r: TargetResult) => {
      results.push(r);
      await record(r);
      opts.onTargetDone?.(r);
    };

    const drain = async (targets: FleetTarget[]) => {
      const queues = new Map<string, FleetTarget[]>();
      for (const t of targets) {
        const k = `${serverOf(t)}/${t.database}`;
        if (!queues.has(k)) queues.set(k, []);
        queues.get(k)!.push(t);
      }
      const active = new Map<string, number>();
      const pick = (): string | undefined => {
        let best: string | undefined;
        for (const [k, q] of queues) {
          if (!q.length) continue;
          if (best === undefined || (active.get(k) ?? 0) < (active.get(best) ?? 0)) best = k;
        }
        return best;
      };
      const worker = async () => {
        for (let k = pick(); k !== undefined; k = pick()) {
          const queue = queues.get(k)!;
          const first = queue[0];
          const server = serverOf(first);
          active.set(k, (active.get(k) ?? 0) + 1);
          await slotsOf(server).take();
          const client = connect(first);
          try {
            if (!queue.length) continue; // drained by others while we waited for a slot
            try {
              await client.connect();
            } catch (err) {
              // The database cannot be reached: every target in it fails, the others go on.
              for (let t = queue.shift(); t; t = queue.shift()) {
                await finish({ target: t, status: 'failed', before: '?', after: '?', applied: [], pending: [], error: (err as Error).message, durationMs: 0 });
              }
              continue;
            }
            for (let t = queue.shift(); t; t = queue.shift()) await finish(await runOn(client, t));
          } finally {
            await client.end().catch(() => undefined);
            slotsOf(server).give();
            active.set(k, (active.get(k) ?? 1) - 1);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
    };

    let canaryFailed = false;
    let rest = all;
    if (opts.canary) {
      const canaryTargets = await listFleetTargets(control, { tenantSlug: opts.canary });
      await drain(canaryTargets);
      canaryFailed = results.some((r) => r.status === 'failed');
      rest = all.filter((t) => !canaryTargets.some((c) => c.key === t.key));
    }
    if (!canaryFailed) await drain(rest);
    else for (const t of rest) results.push({ target: t, status: 'not-run', before: '?', after: '?', applied: [], pending: [], durationMs: 0 });

    const peakConnections = Object.fromEntries([...slots].map(([s, v]) => [s, v.peak]));
    const ok = results.every((r) => r.status === 'migrated' || r.status === 'current') && controlState.drifted.length === 0;
    return { runId, mode: opts.mode, required, results, peakConnections, wallMs: Date.now() - started, ok, canaryFailed, control: controlState };
  } finally {
    await control.end().catch(() => undefined);
    slotsOf(controlServer).give();
  }
}

/**
 * One statement per target, so the single control connection is never the bottleneck: the
 * attempt's ledger rows, clearing failures a later success healed, and schema_version (only ever
 * forward). A 'current' target is recorded too: a runner killed between a step's commit and this
 * record leaves the target ahead of control, and only a later run can catch control up (or the API
 * would answer 503 tenant_migrating for it forever).
 */
async function recordOutcome(control: Client, runId: string, r: TargetResult): Promise<void> {
  const rows: Array<[string, string, Date, number, string | null]> = r.applied.map((a) => ['applied', a.version, new Date(), a.durationMs, null]);
  if (r.status === 'failed' && r.failedVersion) rows.push(['failed', r.failedVersion, new Date(), r.durationMs, r.error ?? 'failed']);
  const healthy = r.status === 'migrated' || r.status === 'current';
  const version = r.after === '?' ? null : r.after;
  if (!rows.length && !version) return;
  await control.query(
    `WITH attempt AS (
       SELECT * FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::int[], $7::text[]) AS x(s, v, f, d, e)),
     ledger AS (
       INSERT INTO control.migration_ledger (target_key, version, status, run_id, started_at, finished_at, duration_ms, error)
       SELECT $1, v, s, $2, f - make_interval(secs => d / 1000.0), f, d, e FROM attempt
       ON CONFLICT (target_key, version) DO UPDATE SET status = EXCLUDED.status, run_id = EXCLUDED.run_id,
         started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms, error = EXCLUDED.error),
     healed AS (
       DELETE FROM control.migration_ledger
        WHERE $8 AND target_key = $1 AND status = 'failed' AND version <= $9 AND NOT (version = ANY ($4::text[]))),
     pool AS (
       UPDATE control.pools SET schema_version = $9 WHERE $10 = 'pool' AND id = $11 AND schema_version < $9),
     tenant AS (
       UPDATE control.tenants SET schema_version = $9 WHERE $10 <> 'pool' AND id = $12::uuid AND schema_version < $9)
     SELECT 1`,
    [
      r.target.key,
      runId,
      rows.map((x) => x[0]),
      rows.map((x) => x[1]),
      rows.map((x) => x[2]),
      rows.map((x) => x[3]),
      rows.map((x) => x[4]),
      healthy,
      version ?? '0000',
      r.target.kind,
      r.target.poolId,
      r.target.tenantId ?? null,
    ],
  );
}

async function readControlPlaneState(control: Client, migrations: SqlMigration[]): Promise<ControlPlaneState> {
  const applied = await appliedVersions(control, CONTROL_SCHEMA);
  return {
    applied: newest(applied.keys()),
    pending: migrations.filter((m) => !applied.has(m.version)).map((m) => m.version),
    drifted: driftOf(applied, migrations),
  };
}

async function readLastErrors(control: Client): Promise<Map<string, { version: string; error: string; at: Date }>> {
  const rows = await control.query<{ target_key: string; version: string; error: string; finished_at: Date }>(
    `SELECT DISTINCT ON (target_key) target_key, version, error, finished_at
       FROM control.migration_ledger WHERE status = 'failed' ORDER BY target_key, finished_at DESC`,
  );
  return new Map(rows.rows.map((r) => [r.target_key, { version: r.version, error: r.error, at: r.finished_at }]));
}
