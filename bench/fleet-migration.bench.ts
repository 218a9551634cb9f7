/**
 * Fleet migration bench (issue 3): how long `runFleet` takes to apply a migration that adds a column
 * and an index to every target of a big fleet — default 1,000 bridge schemas + 100 silo databases
 * (+ the pool's shared schema) — how many connections it holds per server, and how much memory.
 *
 *   npm run bench:migrate -- [--bridge 1000] [--silo 100] [--quick] [--concurrency 8] [--per-server-cap 10]
 *
 * 1. A throw-away database + roles (BenchDatabase, like the HTTP bench), bootstrapped.
 * 2. The fleet, fast (not measured): tenant rows inserted in one statement, silo databases created
 *    in parallel (bounded), the current tenant migrations applied by runFleet itself, a few rows of
 *    data per target, then a CHECKPOINT so the setup's dirty pages are not flushed during the run.
 * 3. Measured: runFleet mode 'up' with the tenant migrations + a synthetic 0002 (ADD COLUMN + CREATE
 *    INDEX) in a forked worker (so its peak RSS is the runner's alone), while this process samples
 *    pg_stat_activity every 50 ms on every server of the fleet.
 * 4. Checks every target got the index, optionally measures a no-op second 'up', prints the
 *    figures, and drops everything it created — also on failure and SIGINT/SIGTERM.
 *
 * See bench/MIGRATE.md.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, escapeIdentifier, escapeLiteral } from 'pg';
import { tierRules } from '#strata/tenancy/platform';
import { loadMigrations, runFleet, type SqlMigration } from '#strata/migrator';
import { BenchDatabase, withClient } from './bench-database';
import type { StepStat, WorkerDone, WorkerGo, WorkerMessage } from './fleet-migration.worker';

const TARGET_SECONDS = 60;
const SAMPLE_INTERVAL_MS = 50;
const APP_NAME = 'strata-migrate'; // what runFleet's connections call themselves

/** The measured migration: a column and an index on a tenant table, in every target. */
const BENCH_MIGRATION_SQL = `-- bench only (bench/fleet-migration.bench.ts): a column and an index on a tenant table
ALTER TABLE projects ADD COLUMN archived_at timestamptz;
CREATE INDEX projects_archived_idx ON projects (tenant_id, archived_at);
`;

function benchMigration(): SqlMigration {
  const current = loadMigrations('tenant');
  const last = current.length ? Number(current[current.length - 1].version) : 0;
  return {
    version: String(last + 1).padStart(4, '0'),
    name: 'bench_projects_archived_at',
    sql: BENCH_MIGRATION_SQL,
    checksum: createHash('sha256').update(BENCH_MIGRATION_SQL).digest('hex'),
  };
}

// ---------------------------------------------------------------------------------------------
// options

interface Options {
  bridge: number;
  silo: number;
  quick: boolean;
  concurrency: number;
  perServerCap: number;
  rows: number;
  setupConcurrency: number;
  noop: boolean;
  profile: boolean;
  checkpoint: boolean;
}

const USAGE = `usage: npm run bench:migrate -- [options]

  --bridge <n>             bridge tenants (schemas in the bench database), default 1000
  --silo <n>               silo tenants (one database each), default 100
  --quick                  100 bridge + 10 silo (explicit --bridge/--silo still win)
  --concurrency <n>        runFleet concurrency, default 8 (as npm run migrate)
  --per-server-cap <n>     runFleet per-server connection cap, default 10 (as npm run migrate)
  --rows <n>               projects per tenant target before the measured migration, default 20
  --setup-concurrency <n>  parallel CREATE DATABASE / seeding connections during setup, default 4
  --no-noop                skip the second, no-op 'up' pass
  --no-profile             do not time the runner's pg calls by step
  --no-checkpoint          no CHECKPOINT between setup and the measured run`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    strict: true,
    options: {
      bridge: { type: 'string' },
      silo: { type: 'string' },
      quick: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      'per-server-cap': { type: 'string' },
      rows: { type: 'string' },
      'setup-concurrency': { type: 'string' },
      noop: { type: 'boolean', default: true },
      profile: { type: 'boolean', default: true },
      checkpoint: { type: 'boolean', default: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const quick = values.quick ?? false;
  return {
    quick,
    bridge: int('bridge', values.bridge, quick ? 100 : 1000, 0),
    silo: int('silo', values.silo, quick ? 10 : 100, 0),
    concurrency: int('concurrency', values.concurrency, 8, 1),
    perServerCap: int('per-server-cap', values['per-server-cap'], 10, 2),
    rows: int('rows', values.rows, 20, 0),
    setupConcurrency: int('setup-concurrency', values['setup-concurrency'], 4, 1),
    noop: values.noop ?? true,
    profile: values.profile ?? true,
    checkpoint: values.checkpoint ?? true,
  };
}

// ---------------------------------------------------------------------------------------------
// helpers

const log = (msg: string) => console.error(`[bench:migrate] ${msg}`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const fmtInt = (n: number) => n.toLocaleString('en-US');

function withDatabase(url: string, database: string, server?: { host: string; port: number }): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  if (server) {
    u.hostname = server.host;
    u.port = String(server.port);
  }
  return u.toString();
}


/** Runs fn over items with at most `width` at once; the first error stops taking new items and is rethrown. */
async function inParallel<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (failed === undefined && next < items.length) {
        const i = next++;
        try {
          await fn(items[i], i);
        } catch (err) {
          failed ??= err;
        }
      }
    }),
  );
  if (failed !== undefined) throw failed;
}

/** Like inParallel, but each lane keeps one client open on `url` for all its items. */
async function onClients<T>(url: string, items: T[], width: number, fn: (c: Client, item: T) => Promise<void>): Promise<void> {
  const lanes = Array.from({ length: Math.min(width, items.length) }, (_, lane) => items.filter((_, i) => i % width === lane));
  await inParallel(lanes, width, (lane) => withClient(url, async (c) => {
    for (const item of lane) await fn(c, item);
  }));
}

// ---------------------------------------------------------------------------------------------
// the fleet (setup, not measured)

interface BenchTenant {
  id: string;
  slug: string;
  tier: 'bridge' | 'silo';
  schema: string;
  database: string | null;
}

interface Fleet {
  tenants: BenchTenant[];
  siloDatabases: string[];
  servers: Array<{ host: string; port: number }>;
  timings: Array<[string, number]>;
}

/**
 * Lets the cleanup stop the setup from creating more databases and wait for a CREATE DATABASE in
 * flight (SIGINT during setup): a DROP before the CREATE commits is a no-op and would leave it behind.
 */
interface SetupState {
  aborting: boolean;
  creating: Set<Promise<unknown>>;
}

function track<T>(state: SetupState, p: Promise<T>): Promise<T> {
  const settled = p.then(
    () => undefined,
    () => undefined,
  );
  state.creating.add(settled);
  void settled.then(() => state.creating.delete(settled));
  return p;
}

async function createFleet(db: BenchDatabase, opts: Options, created: Set<string>, state: SetupState): Promise<Fleet> {
  const timings: Array<[string, number]> = [];
  const timed = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await fn();
    const ms = performance.now() - t0;
    timings.push([label, ms]);
    log(`${label}: ${secs(ms)}`);
    return out;
  };

  // Tenant records: one INSERT for the whole fleet. Slugs end with the run id, so BenchDatabase.drop()
  // also finds silo databases by name.
  const pad = (n: number, total: number) => String(n).padStart(Math.max(4, String(total).length), '0');
  const wanted: Array<Omit<BenchTenant, 'id'>> = [];
  for (let i = 1; i <= opts.bridge; i++) {
    const slug = db.slug(`b${pad(i, opts.bridge)}`);
    wanted.push({ slug, tier: 'bridge', schema: tierRules('bridge').placementFor(slug).schemaName, database: null });
  }
  for (let i = 1; i <= opts.silo; i++) {
    const slug = db.slug(`s${pad(i, opts.silo)}`);
    const p = tierRules('silo').placementFor(slug);
    wanted.push({ slug, tier: 'silo', schema: p.schemaName, database: p.databaseName });
  }
  const tenants = await timed(`insert ${fmtInt(wanted.length)} control.tenants rows`, () =>
    withClient(db.ownerUrl, async (c) => {
      const res = await c.query<{ id: string; slug: string }>(
        `INSERT INTO control.tenants (slug, name, tier, pool_id, status, schema_name, database_name, schema_version)
         SELECT s, 'bench ' || s, t, 'main-' || t, 'active', sn, dn, '0001'
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(s, t, sn, dn)
         RETURNING id, slug`,
        [wanted.map((w) => w.slug), wanted.map((w) => w.tier), wanted.map((w) => w.schema), wanted.map((w) => w.database)],
      );
      const ids = new Map(res.rows.map((r) => [r.slug, r.id]));
      return wanted.map((w) => ({ ...w, id: ids.get(w.slug)! }));
    }),
  );
  const siloDatabases = tenants.filter((t) => t.database).map((t) => t.database!);

  const pools = await withClient(db.ownerUrl, async (c) =>
    (await c.query<{ kind: string; host: string; port: number; database: string }>(`SELECT kind, host, port, database FROM control.pools`)).rows,
  );
  const servers = [...new Map(pools.map((p) => [`${p.host}:${p.port}`, { host: p.host, port: p.port }])).values()];
  const silo = pools.find((p) => p.kind === 'silo')!;

  // Silo databases: CREATE DATABASE (WAL_LOG, ~70 ms each) on a few connections at once.
  await timed(`CREATE DATABASE × ${siloDatabases.length} (${opts.setupConcurrency} at once)`, () =>
    onClients(withDatabase(db.adminUrl, silo.database, silo), siloDatabases, opts.setupConcurrency, async (c, name) => {
      if (state.aborting) throw new Error('interrupted');
      created.add(name);
      await track(state, c.query(`CREATE DATABASE ${escapeIdentifier(name)}`));
    }),
  );

  // The current tenant migrations into every target, by the runner itself (it creates the schemas).
  let done = 0;
  const setup = await timed(`tenant migrations (${loadMigrations('tenant').map((m) => m.version).join(', ')}) into ${fmtInt(tenants.length + 1)} targets via runFleet`, () =>
    runFleet({
      ownerUrl: db.ownerUrl,
      appRole: db.appRole,
      mode: 'up',
      concurrency: opts.concurrency,
      perServerCap: opts.perServerCap,
      onTargetDone: () => {
        if (++done % 250 === 0) log(`  setup: ${done} targets migrated`);
      },
    }),
  );
  if (!setup.ok) {
    const bad = setup.results.filter((r) => r.status === 'failed').slice(0, 5);
    throw new Error(`fleet setup failed on ${bad.length}+ targets: ${bad.map((r) => `${r.target.key}: ${r.error}`).join('; ')}`);
  }

  // A few rows per target, through RLS like the app (tenant set, the target's schema on the path),
  // so the index is not built on empty tables.
  if (opts.rows > 0) {
    const insertFor = (t: BenchTenant) =>
      `SET LOCAL search_path TO ${escapeIdentifier(t.schema)}; SELECT set_config('app.tenant_id', ${escapeLiteral(t.id)}, true);
       INSERT INTO projects (tenant_id, name, description)
         SELECT ${escapeLiteral(t.id)}::uuid, 'project ' || g, 'bench row ' || g FROM generate_series(1, ${opts.rows}) AS g;`;
    await timed(`seed ${opts.rows} projects into each of ${fmtInt(tenants.length)} tenant targets`, async () => {
      const bridge = tenants.filter((t) => t.tier === 'bridge');
      const batches: BenchTenant[][] = [];
      for (let i = 0; i < bridge.length; i += 50) batches.push(bridge.slice(i, i + 50));
      await onClients(db.ownerUrl, batches, opts.setupConcurrency, async (c, batch) => {
        await c.query(`BEGIN; ${batch.map(insertFor).join('\n')} COMMIT;`);
      });
      await inParallel(
        tenants.filter((t) => t.tier === 'silo'),
        opts.setupConcurrency,
        (t) => withClient(withDatabase(db.ownerUrl, t.database!), (c) => c.query(`BEGIN; ${insertFor(t)} COMMIT;`).then(() => undefined)),
      );
    });
  }

  if (opts.checkpoint) {
    // The setup wrote hundreds of MB (WAL_LOG copies template0 into the WAL per database); flush it
    // now rather than in the middle of the measured run, as pgbench does before it measures.
    await timed('CHECKPOINT', () => withClient(db.adminUrl, (c) => c.query('CHECKPOINT').then(() => undefined))).catch((err) =>
      log(`CHECKPOINT skipped: ${(err as Error).message}`),
    );
  }
  return { tenants, siloDatabases, servers, timings };
}

// ---------------------------------------------------------------------------------------------
// independent sampling while the runner works

interface ActivityPeaks {
  server: string;
  samples: number;
  meanIntervalMs: number;
  /** Backends named strata-migrate in this run's databases: the runner's connections as the server sees them. */
  runner: number;
  /** Backends named strata-migrate in any database (another runner on a shared server would show here). */
  anyRunner: number;
  /** Client backends on the server, everyone's, the sampler's own included. */
  clientBackends: number;
  /** Every backend on the server, background processes included. */
  total: number;
  samplesOverCap: number;
}

class ActivitySampler {
  private client?: Client;
  private stopped = false;
  private loop?: Promise<void>;
  private readonly peaks: ActivityPeaks;
  private first = 0;
  private last = 0;

  constructor(
    private readonly url: string,
    server: string,
    private readonly databases: string[],
    private readonly cap: number,
  ) {
    this.peaks = { server, samples: 0, meanIntervalMs: 0, runner: 0, anyRunner: 0, clientBackends: 0, total: 0, samplesOverCap: 0 };
  }

  async start(): Promise<void> {
    this.client = new Client({ connectionString: this.url, application_name: 'strata-bench-sampler' });
    await this.client.connect();
    await this.sample(); // the connection and plan are warm before the runner starts
    this.peaks.samples = 0;
    this.loop = this.run();
  }

  async stop(): Promise<ActivityPeaks> {
    this.stopped = true;
    await this.loop;
    await this.sample();
    await this.client?.end().catch(() => undefined);
    this.peaks.meanIntervalMs = this.peaks.samples > 1 ? (this.last - this.first) / (this.peaks.samples - 1) : 0;
    return this.peaks;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const t0 = performance.now();
      await this.sample();
      const wait = SAMPLE_INTERVAL_MS - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  private async sample(): Promise<void> {
    const now = performance.now();
    const res = await this.client!.query<{ runner: number; any_runner: number; clients: number; total: number }>(
      `SELECT count(*) FILTER (WHERE application_name = $1 AND datname = ANY($2::text[]))::int AS runner,
              count(*) FILTER (WHERE application_name = $1)::int AS any_runner,
              count(*) FILTER (WHERE backend_type = 'client backend')::int AS clients,
              count(*)::int AS total
         FROM pg_stat_activity`,
      [APP_NAME, this.databases],
    );
    const r = res.rows[0];
    const p = this.peaks;
    if (p.samples === 0) this.first = now;
    this.last = now;
    p.samples++;
    p.runner = Math.max(p.runner, r.runner);
    p.anyRunner = Math.max(p.anyRunner, r.any_runner);
    p.clientBackends = Math.max(p.clientBackends, r.clients);
    p.total = Math.max(p.total, r.total);
    if (r.runner > this.cap) p.samplesOverCap++;
  }
}

/** Whole-machine CPU from /proc/stat (null elsewhere): busy and iowait shares of all cores. */
function machineCpu(): { busy: number; iowait: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return { busy: user + nice + system + irq + softirq + (steal ?? 0), iowait, total: user + nice + system + idle + iowait + irq + softirq + (steal ?? 0) };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// one measured pass in a forked worker

interface PassResult {
  label: string;
  done: WorkerDone;
  activity: ActivityPeaks[];
  machine: { busyPct: number; iowaitPct: number } | null;
}

async function measurePass(
  label: string,
  db: BenchDatabase,
  fleet: Fleet,
  opts: Options,
  migrations: SqlMigration[],
  children: Set<ChildProcess>,
): Promise<PassResult> {
  const child = fork(join(__dirname, 'fleet-migration.worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const messages: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: WorkerMessage) => {
    messages.push(m);
    wake?.();
  });
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `worker exited (code ${code}, signal ${signal})`;
    children.delete(child);
    wake?.();
  });
  const next = async (): Promise<WorkerMessage> => {
    while (!messages.length) {
      if (exited) throw new Error(`${exited} before answering`);
      await new Promise<void>((r) => (wake = r));
    }
    return messages.shift()!;
  };

  const ready = await next();
  if (ready.type !== 'ready') throw new Error(`worker: ${JSON.stringify(ready)}`);
  const databases = [db.name, ...fleet.siloDatabases];
  const samplers = fleet.servers.map(
    (s) => new ActivitySampler(withDatabase(db.adminUrl, new URL(db.adminUrl).pathname.slice(1) || 'postgres', s), `${s.host}:${s.port}`, databases, opts.perServerCap),
  );
  await Promise.all(samplers.map((s) => s.start()));
  const cpu0 = machineCpu();
  const go: WorkerGo = {
    type: 'go',
    ownerUrl: db.ownerUrl,
    appRole: db.appRole,
    mode: 'up',
    concurrency: opts.concurrency,
    perServerCap: opts.perServerCap,
    migrations,
    profile: opts.profile,
  };
  child.send(go);
  let answer: WorkerMessage | undefined;
  let failure: unknown;
  try {
    answer = await next();
  } catch (err) {
    failure = err;
  }
  const cpu1 = machineCpu();
  const activity = await Promise.all(samplers.map((s) => s.stop().catch(() => null)));
  if (failure !== undefined || !answer) throw failure;
  if (answer.type !== 'done') throw new Error(`worker failed: ${answer.type === 'error' ? answer.message : JSON.stringify(answer)}`);
  const span = cpu0 && cpu1 ? cpu1.total - cpu0.total : 0;
  return {
    label,
    done: answer,
    activity: activity.filter((a): a is ActivityPeaks => a !== null),
    machine: span > 0 ? { busyPct: (100 * (cpu1!.busy - cpu0!.busy)) / span, iowaitPct: (100 * (cpu1!.iowait - cpu0!.iowait)) / span } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// checking the outcome

async function verify(db: BenchDatabase, fleet: Fleet, version: string, opts: Options): Promise<{ ok: boolean; lines: string[] }> {
  const bridgeSchemas = ['shared', ...fleet.tenants.filter((t) => t.tier === 'bridge').map((t) => t.schema)];
  const lines: string[] = [];
  let ok = true;
  const check = (what: string, got: number, want: number) => {
    if (got !== want) ok = false;
    lines.push(`${got === want ? 'ok  ' : 'FAIL'} ${what}: ${fmtInt(got)} / ${fmtInt(want)}`);
  };
  // Grants: DML on every tenant table, only SELECT on the ledger (has_table_privilege with a list
  // answers "any of them", so one call per privilege).
  const grantsSql = `
    SELECT count(*) FILTER (WHERE c.relname <> 'strata_migrations')::int AS tables,
           count(*) FILTER (WHERE c.relname <> 'strata_migrations' AND has_table_privilege($1, c.oid, 'SELECT')
             AND has_table_privilege($1, c.oid, 'INSERT') AND has_table_privilege($1, c.oid, 'UPDATE')
             AND has_table_privilege($1, c.oid, 'DELETE'))::int AS dml,
           count(*) FILTER (WHERE c.relname = 'strata_migrations')::int AS ledgers,
           count(*) FILTER (WHERE c.relname = 'strata_migrations' AND has_table_privilege($1, c.oid, 'SELECT')
             AND NOT has_table_privilege($1, c.oid, 'INSERT') AND NOT has_table_privilege($1, c.oid, 'UPDATE')
             AND NOT has_table_privilege($1, c.oid, 'DELETE'))::int AS read_only
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($2::text[])`;
  type Grants = { tables: number; dml: number; ledgers: number; read_only: number };
  const grants: Grants = { tables: 0, dml: 0, ledgers: 0, read_only: 0 };
  const addGrants = (g: Grants) => {
    for (const k of Object.keys(grants) as Array<keyof Grants>) grants[k] += g[k];
  };
  await withClient(db.ownerUrl, async (c) => {
    addGrants((await c.query<Grants>(grantsSql, [db.appRole, bridgeSchemas])).rows[0]);
    const idx = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class i JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE i.relname = 'projects_archived_idx' AND i.relkind = 'i' AND n.nspname = ANY($1::text[])`,
      [bridgeSchemas],
    );
    check(`index projects_archived_idx in the shared + bridge schemas of ${db.name}`, idx.rows[0].n, bridgeSchemas.length);
    const rows = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM control.tenants WHERE slug LIKE $1 AND schema_version = $2`,
      [`%-${db.runId}`, version],
    );
    check(`control.tenants at schema_version ${version}`, rows.rows[0].n, fleet.tenants.length);
    const ledger = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM control.migration_ledger WHERE version = $1 AND status = 'applied'`,
      [version],
    );
    check(`control.migration_ledger rows 'applied' for ${version}`, ledger.rows[0].n, fleet.tenants.length + 1);
  });
  let silosWithIndex = 0;
  await inParallel(fleet.siloDatabases, opts.setupConcurrency, (name) =>
    withClient(withDatabase(db.ownerUrl, name), async (c) => {
      const r = await c.query<{ ok: boolean }>(`SELECT to_regclass('shared.projects_archived_idx') IS NOT NULL AS ok`);
      if (r.rows[0].ok) silosWithIndex++;
      addGrants((await c.query<Grants>(grantsSql, [db.appRole, ['shared']])).rows[0]);
    }),
  );
  check('index shared.projects_archived_idx in the silo databases', silosWithIndex, fleet.siloDatabases.length);
  check(`tenant tables on which ${db.appRole} has SELECT, INSERT, UPDATE and DELETE, every target`, grants.dml, grants.tables);
  check(`strata_migrations ledgers ${db.appRole} can read but not write, every target`, grants.read_only, grants.ledgers);
  if (grants.ledgers !== bridgeSchemas.length + fleet.siloDatabases.length) {
    check('targets with a strata_migrations ledger', grants.ledgers, bridgeSchemas.length + fleet.siloDatabases.length);
  }
  return { ok, lines };
}

// ---------------------------------------------------------------------------------------------
// printing

function describeEnvironment(db: BenchDatabase, pg: { version: string; maxConnections: string }): string[] {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'libs/platform/migrator', 'migrations'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty) commit += ' + uncommitted changes in libs/platform/migrator or migrations';
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  return [
    `command:  node dist/bench/fleet-migration.bench.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `machine:  ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}, PostgreSQL ${pg.version} (max_connections ${pg.maxConnections}), commit ${commit}`,
    `database: ${db.name} on ${redact(db.adminUrl)}`,
  ];
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

function printPasses(passes: PassResult[], opts: Options): string[] {
  const lines: string[] = [];
  lines.push(
    '| pass | targets | outcome | wall | targets/s | peak conns/server, runner\'s count | sampled strata-migrate backends (peak) | sampled backends on server, all (peak) | runner RSS: maxRSS / sampled max | runner CPU / event loop busy | machine busy (iowait) |',
  );
  lines.push('|---|--:|---|--:|--:|---|---|---|--:|--:|--:|');
  for (const p of passes) {
    const r = p.done.report;
    const wall = r.wallMs / 1000;
    const outcome = Object.entries(r.byStatus).map(([s, n]) => `${fmtInt(n)} ${s}`).join(', ');
    const peaks = Object.entries(r.peakConnections).map(([s, n]) => `${s}: ${n}`).join(', ');
    const sampled = p.activity.map((a) => `${a.server}: ${a.runner}${a.anyRunner !== a.runner ? ` (any db: ${a.anyRunner})` : ''}`).join(', ');
    const backends = p.activity.map((a) => `${a.server}: ${a.clientBackends} clients / ${a.total} all`).join(', ');
    const cpuMs = p.done.cpu.userMs + p.done.cpu.systemMs;
    lines.push(
      `| ${p.label} | ${fmtInt(r.targets)} | ${outcome} | ${wall.toFixed(1)} s | ${(r.targets / Math.max(wall, 0.001)).toFixed(1)} | ${peaks} | ${sampled} | ${backends} | ` +
        `${mib(p.done.memory.maxRssBytes)} / ${mib(p.done.memory.sampledRssMaxBytes)} | ` +
        `${((100 * cpuMs) / Math.max(p.done.wallMs, 1)).toFixed(0)} % of a core / ${(100 * p.done.cpu.eventLoopUtilization).toFixed(0)} % | ` +
        `${p.machine ? `${p.machine.busyPct.toFixed(0)} % (${p.machine.iowaitPct.toFixed(0)} %)` : 'n/a'} |`,
    );
  }
  lines.push('');
  for (const p of passes) {
    const a = p.activity.map((x) => `${x.server} ${x.samples} samples, one per ${x.meanIntervalMs.toFixed(0)} ms`).join('; ');
    lines.push(
      `${p.label}: pg_stat_activity ${a}; runner RSS before runFleet ${mib(p.done.memory.rssBeforeBytes)}, heap used max ${mib(p.done.memory.heapUsedMaxBytes)} ` +
        `(${p.done.memory.rssSamples} RSS samples); --concurrency ${opts.concurrency}, --per-server-cap ${opts.perServerCap}.`,
    );
  }
  return lines;
}

function printDurations(p: PassResult): string[] {
  const lines = [
    `Per-target time in ${p.label} (TargetResult.durationMs: ledger read + migrateSchema on an open connection; excludes connect and the control-plane write):`,
    '',
    '| kind | targets | p50 | p95 | max | sum |',
    '|---|--:|--:|--:|--:|--:|',
  ];
  for (const d of p.done.durations) {
    lines.push(`| ${d.kind} | ${fmtInt(d.targets)} | ${d.p50Ms} ms | ${d.p95Ms} ms | ${d.maxMs} ms | ${secs(d.totalMs)} |`);
  }
  return lines;
}

function printSteps(p: PassResult, opts: Options): string[] {
  const steps = p.done.steps;
  if (!steps) return [];
  const total = steps.reduce((a, s) => a + s.totalMs, 0);
  const lines = [
    `Where the runner's time goes in ${p.label} (every pg call timed from the caller's side, summed over all connections; ` +
      `at most ${Math.min(opts.concurrency, opts.perServerCap - 1)} connections busy × ${secs(p.done.wallMs)} wall = ${secs(Math.min(opts.concurrency, opts.perServerCap - 1) * p.done.wallMs)}; ` +
      'control-plane calls include waiting behind other workers on the one control connection):',
    '',
    '| step | calls | total | share | mean | p50 | p95 | max |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} ms`;
  for (const s of steps as StepStat[]) {
    lines.push(
      `| ${s.step} | ${fmtInt(s.calls)} | ${secs(s.totalMs)} | ${((100 * s.totalMs) / Math.max(total, 1)).toFixed(1)} % | ${ms(s.meanMs)} | ${ms(s.p50Ms)} | ${ms(s.p95Ms)} | ${ms(s.maxMs)} |`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const db = new BenchDatabase();
  const silosCreated = new Set<string>();
  const setupState: SetupState = { aborting: false, creating: new Set() };
  const children = new Set<ChildProcess>();
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const child of children) child.kill('SIGKILL');
      const t0 = performance.now();
      // Silo databases first, a few at once (BenchDatabase.drop() does them one by one), then the
      // database, the strays by name and both roles.
      setupState.aborting = true;
      await Promise.all(setupState.creating);
      await onClients(db.adminUrl, [...silosCreated], opts.setupConcurrency, (c, name) =>
        c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`).then(() => undefined),
      ).catch((err) => log(`dropping silo databases in parallel failed (drop() retries them): ${(err as Error).message}`));
      await db.drop().then(
        () => log(`dropped ${db.name}, ${silosCreated.size} silo databases and roles ${db.appRole}, ${db.appRole}_control (${secs(performance.now() - t0)})`),
        (err) => log(`!! could not drop ${db.name} / its silo databases / ${db.appRole}; drop them by hand: ${err}`),
      );
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    const pg = await withClient(db.adminUrl, async (c) => ({
      version: (await c.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version,
      maxConnections: (await c.query<{ max_connections: string }>('SHOW max_connections')).rows[0].max_connections,
    }));
    const env = describeEnvironment(db, pg);
    log(`creating ${db.name} (roles ${db.appRole}, ${db.appRole}_control) on ${redact(db.adminUrl)}`);
    const t0 = performance.now();
    if (setupState.aborting) throw new Error('interrupted');
    await track(setupState, db.create());
    if (setupState.aborting) throw new Error('interrupted');
    const fleet = await createFleet(db, opts, silosCreated, setupState);
    const setupMs = performance.now() - t0;
    const targets = fleet.tenants.length + 1;

    const migration = benchMigration();
    const migrations = [...loadMigrations('tenant'), migration];
    log(`measuring: runFleet up ${migration.version}_${migration.name} over ${fmtInt(targets)} targets`);
    const passes: PassResult[] = [];
    passes.push(await measurePass(`up ${migration.version} (measured)`, db, fleet, opts, migrations, children));
    log(`measured pass: ${secs(passes[0].done.report.wallMs)}`);
    const verified = await verify(db, fleet, migration.version, opts);
    if (opts.noop) {
      log('second pass: up with nothing pending');
      passes.push(await measurePass('up again (no-op)', db, fleet, opts, migrations, children));
    }

    // ----- report
    const main = passes[0];
    const failures = passes.flatMap((p) => p.done.report.failures.map((f) => ({ pass: p.label, ...f })));
    const runnerOver = passes.flatMap((p) => Object.entries(p.done.report.peakConnections).filter(([, n]) => n > opts.perServerCap).map(([s, n]) => `${p.label} ${s}: ${n}`));
    const sampledOver = passes.flatMap((p) => p.activity.filter((a) => a.runner > opts.perServerCap).map((a) => `${p.label} ${a.server}: ${a.runner} (${a.samplesOverCap} samples)`));
    const fast = main.done.report.wallMs <= TARGET_SECONDS * 1000;
    const defaultFleet = opts.bridge === 1000 && opts.silo === 100;
    const out: string[] = [];
    out.push('', '## Fleet migration bench', '');
    for (const l of env) out.push(`- ${l}`);
    out.push(
      `- fleet: ${fmtInt(targets)} targets = 1 pool shared schema + ${fmtInt(opts.bridge)} bridge schemas (one database) + ${fmtInt(opts.silo)} silo databases; ` +
        `${opts.rows} projects per tenant target`,
    );
    out.push(`- setup (not measured): ${secs(setupMs)} — ${fleet.timings.map(([l, ms]) => `${l} ${secs(ms)}`).join('; ')}`);
    out.push(`- measured migration ${migration.version}_${migration.name}: \`${BENCH_MIGRATION_SQL.split('\n').filter((l) => l && !l.startsWith('--')).join(' ')}\``);
    out.push('');
    out.push(...printPasses(passes, opts));
    out.push('');
    out.push(...printDurations(main));
    out.push('');
    out.push(...printSteps(main, opts));
    out.push('');
    out.push(`Checks after the measured pass:`);
    for (const l of verified.lines) out.push(`  ${l}`);
    out.push('');
    out.push(
      `Target (issue 3${defaultFleet ? '' : ', set for the default 1,000 + 100 fleet'}): the whole fleet in ≤ ${TARGET_SECONDS} s with connections never above the cap (${opts.perServerCap}): ` +
        `${secs(main.done.report.wallMs)} → ${fast ? 'time MET' : 'time MISSED'}; connections ${runnerOver.length || sampledOver.length ? `ABOVE THE CAP: ${[...runnerOver, ...sampledOver].join('; ')}` : `never above ${opts.perServerCap} (runner's count and sampled)`}; ` +
        `failures: ${failures.length}.`,
    );
    console.log(out.join('\n'));

    if (failures.length) {
      console.error(`\n!! BENCH FAILED: ${failures.length} target(s) failed:`);
      for (const f of failures.slice(0, 20)) console.error(`!!   ${f.pass} ${f.key}${f.version ? ` at ${f.version}` : ''}: ${f.error}`);
    }
    if (!verified.ok) console.error('\n!! BENCH FAILED: the migration did not land on every target (see the checks above)');
    if (runnerOver.length || sampledOver.length) console.error('\n!! BENCH FAILED: the runner held more connections than the cap');
    return failures.length || !verified.ok || runnerOver.length || sampledOver.length ? 1 : 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('\n!! BENCH FAILED:', err);
    process.exit(1);
  },
);
