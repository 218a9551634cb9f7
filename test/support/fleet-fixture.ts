import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client } from 'pg';
import { escapeIdentifier } from 'pg';
import { loadMigrations, runFleet, type FleetReport, type FleetRunOptions, type SqlMigration, type TargetResult } from '#strata/migrator';
import { createTenancyFixture, type TenancyFixture, type TestTenant } from './tenancy-fixture';

/** One place tenant migrations run into, as the test sees it (mirrors FleetTarget keys). */
export interface TestTarget {
  key: string;
  kind: 'pool' | 'bridge' | 'silo';
  database: string;
  schema: string;
  /** The tenant of a bridge/silo target; undefined for the pool's shared schema. */
  tenant?: TestTenant;
}

export interface CentralLedgerRow {
  target_key: string;
  version: string;
  status: 'applied' | 'failed';
  run_id: string;
  started_at: Date;
  finished_at: Date;
  duration_ms: number;
  error: string | null;
}

export interface Fleet {
  fx: TenancyFixture;
  ownerUrl: string;
  appRole: string;
  poolTenants: TestTenant[];
  bridges: TestTenant[];
  silos: TestTenant[];
  /** The pool's shared schema, every bridge schema, every silo database. */
  targets: TestTarget[];
  poolTarget: TestTarget;
  targetOf(tenant: TestTenant): TestTarget;
  /** The clone plus every silo database (for pg_stat_activity filters). */
  databases: string[];
  /** runFleet on this fleet (owner URL and app role filled in). */
  run(opts: Omit<FleetRunOptions, 'ownerUrl' | 'appRole'>): Promise<FleetReport>;
  /** Owner query in the target's database, with the target's schema first on the search_path. */
  query<R = Record<string, unknown>>(target: TestTarget, sql: string, params?: unknown[]): Promise<R[]>;
  /** Versions in the target's own strata_migrations table. */
  ledger(target: TestTarget): Promise<string[]>;
  /** ledger() of every target, keyed by target key. */
  ledgers(): Promise<Record<string, string[]>>;
  hasColumn(target: TestTarget, table: string, column: string): Promise<boolean>;
  hasIndex(target: TestTarget, index: string): Promise<boolean>;
  hasTable(target: TestTarget, table: string): Promise<boolean>;
  centralLedger(): Promise<CentralLedgerRow[]>;
  /** control.tenants.schema_version of bridge/silo targets and control.pools.schema_version of the pool target. */
  schemaVersions(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

/** A migration object as loadMigrations builds it (checksum = sha256 of the SQL). */
export function sqlMigration(version: string, name: string, sql: string): SqlMigration {
  return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
}

/** The tenant migrations shipped on disk: what onboarding gave every tenant. */
export function shippedTenantMigrations(): SqlMigration[] {
  return loadMigrations('tenant');
}

/** The version right after the newest shipped one, `n` steps on ('0002' while 0001 is the newest file). */
export function nextVersion(n = 1): string {
  const shipped = shippedTenantMigrations();
  return String(Number(shipped[shipped.length - 1].version) + n).padStart(4, '0');
}

/** Shipped migrations plus extra synthetic ones. */
export function withExtra(...extra: SqlMigration[]): SqlMigration[] {
  return [...shippedTenantMigrations(), ...extra];
}

export const resultOf = (report: FleetReport, key: string): TargetResult => {
  const r = report.results.find((x) => x.target.key === key);
  if (!r) throw new Error(`no result for ${key} in the report`);
  return r;
};

export const statusByKey = (report: FleetReport): Record<string, string> =>
  Object.fromEntries(report.results.map((r) => [r.target.key, r.status]));

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/**
 * A real fleet on a fresh clone: `pool` pool tenants (sharing the pool's shared schema), `bridge`
 * bridge schemas and `silo` silo databases, all onboarded through TenantAdminService at the shipped
 * tenant version. close() drops the clone and the silo databases.
 */
export async function createFleet(size: { pool?: number; bridge?: number; silo?: number } = {}): Promise<Fleet> {
  const fx = await createTenancyFixture();
  try {
    const poolTenants = await inBatches(Array.from({ length: size.pool ?? 2 }), 3, () => fx.onboard('pool', 'fp'));
    const bridges = await inBatches(Array.from({ length: size.bridge ?? 20 }), 3, () => fx.onboard('bridge', 'fb'));
    const silos = await inBatches(Array.from({ length: size.silo ?? 5 }), 3, () => fx.onboard('silo', 'fs'));
    return fleetOf(fx, poolTenants, bridges, silos);
  } catch (err) {
    await fx.close();
    throw err;
  }
}

function fleetOf(fx: TenancyFixture, poolTenants: TestTenant[], bridges: TestTenant[], silos: TestTenant[]): Fleet {
  const poolTarget: TestTarget = { key: 'pool:main-pool', kind: 'pool', database: fx.db.name, schema: 'shared' };
  const tenantTarget = (t: TestTenant): TestTarget => ({
    key: `${t.tier}:${t.slug}`,
    kind: t.tier,
    database: t.database,
    schema: t.schema,
    tenant: t,
  });
  const targets = [poolTarget, ...bridges.map(tenantTarget), ...silos.map(tenantTarget)];
  const byKey = new Map(targets.map((t) => [t.key, t]));

  const query = async <R>(target: TestTarget, sql: string, params?: unknown[]): Promise<R[]> => {
    const c: Client = await fx.owner(target.database);
    return (await c.query(sql, params)).rows as R[];
  };
  const ident = (target: TestTarget) => escapeIdentifier(target.schema);
  const ledger = async (target: TestTarget): Promise<string[]> => {
    const rows = await query<{ version: string }>(target, `SELECT version FROM ${ident(target)}.strata_migrations ORDER BY version`);
    return rows.map((r) => r.version);
  };

  return {
    fx,
    ownerUrl: fx.db.ownerUrl,
    appRole: fx.db.appRole,
    poolTenants,
    bridges,
    silos,
    targets,
    poolTarget,
    targetOf(tenant) {
      if (tenant.tier === 'pool') return poolTarget;
      const t = byKey.get(`${tenant.tier}:${tenant.slug}`);
      if (!t) throw new Error(`no target for ${tenant.slug}`);
      return t;
    },
    databases: [fx.db.name, ...silos.map((s) => s.database)],
    run: (opts) => runFleet({ ownerUrl: fx.db.ownerUrl, appRole: fx.db.appRole, ...opts }),
    query,
    ledger,
    async ledgers() {
      const out: Record<string, string[]> = {};
      for (const t of targets) out[t.key] = await ledger(t);
      return out;
    },
    async hasColumn(target, table, column) {
      const rows = await query(
        target,
        `SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`,
        [target.schema, table, column],
      );
      return rows.length === 1;
    },
    async hasIndex(target, index) {
      const rows = await query(target, `SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2`, [target.schema, index]);
      return rows.length === 1;
    },
    async hasTable(target, table) {
      const rows = await query(target, `SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, [target.schema, table]);
      return rows.length === 1;
    },
    async centralLedger() {
      return fx.ownerQuery<CentralLedgerRow>(
        `SELECT target_key, version, status, run_id, started_at, finished_at, duration_ms, error
           FROM control.migration_ledger ORDER BY target_key, version`,
      );
    },
    async schemaVersions() {
      const rows = await fx.ownerQuery<{ key: string; version: string }>(
        `SELECT 'pool:' || id AS key, schema_version AS version FROM control.pools WHERE kind = 'pool'
         UNION ALL
         SELECT tier || ':' || slug, schema_version FROM control.tenants WHERE tier <> 'pool'`,
      );
      return new Map(rows.map((r) => [r.key, r.version]));
    },
    close: () => fx.close(),
  };
}

const ROOT = resolve(__dirname, '../..');
/** Where `npm run migrate` runs the compiled CLI from. */
export const MIGRATE_CLI = join(ROOT, 'dist/apps/cli/src/migrate.js');
const cliChildren = new Set<ChildProcess>();

/** Compiles the project (as `npm run migrate` does) so MIGRATE_CLI is the current code. */
export function buildCli(): void {
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
}

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `node dist/apps/cli/src/migrate.js <args>` against the fleet (owner URL, app role), optionally with STRATA_MIGRATIONS_DIR. */
export function runMigrateCli(fleet: Fleet, args: string[], migrationsDir?: string): { child: ChildProcess; done: Promise<CliExit> } {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: fleet.ownerUrl, DB_APP_USER: fleet.appRole };
  if (migrationsDir) env.STRATA_MIGRATIONS_DIR = migrationsDir;
  else delete env.STRATA_MIGRATIONS_DIR;
  const child = spawn(process.execPath, [MIGRATE_CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  cliChildren.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliExit>((res, rej) => {
    child.on('error', (err) => {
      cliChildren.delete(child);
      rej(err);
    });
    child.on('close', (code, signal) => {
      cliChildren.delete(child);
      res({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/** Kills (SIGKILL) every CLI process this file started that is still running; for afterAll. */
export function killCliChildren(): void {
  for (const c of cliChildren) c.kill('SIGKILL');
  cliChildren.clear();
}

/**
 * A STRATA_MIGRATIONS_DIR with control/ and tenant/ copied from the repository, for tests that
 * add or edit files; the caller removes it.
 */
export function copyOfShippedMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'strata-migrations-'));
  for (const set of ['control', 'tenant']) {
    mkdirSync(join(dir, set));
    for (const f of readdirSync(join(ROOT, 'migrations', set)).filter((x) => x.endsWith('.sql'))) {
      copyFileSync(join(ROOT, 'migrations', set, f), join(dir, set, f));
    }
  }
  return dir;
}

/** A stream a CLI writes to in process, keeping what was written; a terminal when `isTTY`. */
export function capturedStream(isTTY = false, columns = 100) {
  return {
    isTTY,
    columns,
    text: '',
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
  };
}
