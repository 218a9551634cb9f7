import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { bootstrapDatabase } from '#strata/migrator';

export const DEFAULT_BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * A throw-away database and app role for one bench run: `strata_bench_<rand>` and
 * `strata_bench_app_<rand>` on BENCH_DATABASE_URL's server, bootstrapped like a fresh install.
 * drop() removes them and every silo database the run's tenants created; it is idempotent and
 * safe to call from a signal handler or after a half-finished create().
 */
export class BenchDatabase {
  readonly runId = randomBytes(4).toString('hex');
  readonly name = `strata_bench_${this.runId}`;
  readonly appRole = `strata_bench_app_${this.runId}`;
  readonly ownerUrl: string;
  private dropping?: Promise<void>;

  constructor(readonly adminUrl: string = process.env.BENCH_DATABASE_URL || DEFAULT_BENCH_DATABASE_URL) {
    const u = new URL(adminUrl);
    u.pathname = `/${this.name}`;
    this.ownerUrl = u.toString();
  }

  /** A slug for this run's tenants; ends with the run id so drop() can find strays by name. */
  slug(base: string): string {
    return `${base}-${this.runId}`;
  }

  async create(): Promise<void> {
    await withClient(this.adminUrl, (c) => c.query(`CREATE DATABASE ${escapeIdentifier(this.name)}`));
    await bootstrapDatabase({ ownerUrl: this.ownerUrl, appRole: this.appRole });
  }

  async serverVersion(): Promise<string> {
    return withClient(this.adminUrl, async (c) => (await c.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version);
  }

  /** Server settings by name (SHOW), e.g. to print what a write's COMMIT waits for. */
  async settings(names: string[]): Promise<Record<string, string>> {
    return withClient(this.adminUrl, async (c) => {
      const rows = await c.query<{ name: string; setting: string }>(`SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])`, [names]);
      return Object.fromEntries(rows.rows.map((r) => [r.name, r.setting]));
    });
  }

  /**
   * A plan of this run (plans are data): enterprise's quotas and flags, at `ratePerSecond` and at most
   * `maxConcurrentRequests` in flight per tenant (libs/platform/capacity; null: the instance default).
   */
  async addPlan(id: string, ratePerSecond: number, maxConcurrentRequests: number | null = null): Promise<void> {
    await withClient(this.ownerUrl, (c) =>
      c.query(
        `INSERT INTO control.plans (id, name, default_tier, rate_limit_per_second, max_projects, max_invoices_per_month, max_storage_bytes, max_webhook_endpoints, features, max_concurrent_requests)
         SELECT $1, 'Bench (unmetered)', default_tier, $2, max_projects, max_invoices_per_month, max_storage_bytes, max_webhook_endpoints, features, $3
           FROM control.plans WHERE id = 'enterprise'`,
        [id, ratePerSecond, maxConcurrentRequests],
      ),
    );
  }

  /** The silo databases this run's tenants live in (from the registry). */
  async siloDatabases(): Promise<string[]> {
    return withClient(this.ownerUrl, async (c) =>
      (await c.query<{ database_name: string }>(`SELECT database_name FROM control.tenants WHERE database_name IS NOT NULL`)).rows.map(
        (r) => r.database_name,
      ),
    );
  }

  /**
   * ANALYZE the run's database and every silo database. The bench runs with whatever autovacuum
   * the server has (often off, to keep it quiet), and a tenant table that was never analyzed has no
   * statistics: the planner then guesses a few dozen rows and answers `ORDER BY created_at DESC
   * LIMIT 51` with a bitmap scan of every row and a sort, so list reads slowed down run after run
   * as the write runs added invoices, and each tier by how many rows its table had gathered.
   */
  async analyze(): Promise<void> {
    for (const url of [this.ownerUrl, ...(await this.siloDatabases()).map((name) => this.urlOf(name))]) await withClient(url, (c) => c.query('ANALYZE'));
  }

  private urlOf(database: string): string {
    const u = new URL(this.adminUrl);
    u.pathname = `/${database}`;
    return u.toString();
  }

  drop(): Promise<void> {
    this.dropping ??= this.doDrop();
    return this.dropping;
  }

  private async doDrop(): Promise<void> {
    const silos = new Set<string>();
    // The registry says which silo databases the run created…
    try {
      await withClient(this.ownerUrl, async (c) => {
        const rows = await c.query<{ database_name: string }>(
          `SELECT database_name FROM control.tenants WHERE database_name IS NOT NULL`,
        );
        for (const r of rows.rows) silos.add(r.database_name);
      });
    } catch {
      // The database may not exist (failed create) or may not be bootstrapped yet.
    }
    await withClient(this.adminUrl, async (c) => {
      // …and names catch a silo whose record was never written or already removed.
      const strays = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [
        `strata\\_t\\_%\\_${this.runId}`,
      ]);
      for (const r of strays.rows) silos.add(r.datname);
      for (const db of silos) await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(db)} WITH (FORCE)`);
      await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(this.name)} WITH (FORCE)`);
      for (const role of [this.appRole, `${this.appRole}_control`]) await c.query(`DROP ROLE IF EXISTS ${escapeIdentifier(role)}`);
    });
  }
}

/** One short-lived connection for a bench's setup or checks (not measured), always closed. */
export async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url, application_name: 'strata-bench-setup' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}
