import { Client, escapeIdentifier, escapeLiteral } from 'pg';
import { CONTROL_SCHEMA } from './database-bootstrap';
import { listFleetTargets, type FleetTarget } from './fleet.targets';
import { appliedVersions, assertIdentifier, driftOf, type DriftedMigration } from './schema-migrator';
import { loadMigrations, type MigrationSet, type SqlMigration } from './sql-migrations.loader';

/** The key `repair` (and the reports) use for the control plane's own schema. */
export const CONTROL_TARGET_KEY = 'control';

/** A target key that names no target of the fleet. */
export class UnknownMigrationTargetError extends Error {
  constructor(readonly keys: string[]) {
    super(`unknown target(s) ${keys.join(', ')}: use the keys 'npm run migrate -- status --verbose' prints (control, pool:<id>, bridge:<slug>, silo:<slug>)`);
    this.name = 'UnknownMigrationTargetError';
  }
}

export interface ChecksumRepairOptions {
  /** Owner connection to the control-plane database (DATABASE_URL). */
  ownerUrl: string;
  /** Target keys as the reports print them (`control`, `pool:<id>`, `bridge:<slug>`, `silo:<slug>`), or every target. */
  targets: readonly string[] | 'all';
  /** false: only report what would be re-recorded (a dry run). */
  apply: boolean;
  /** Override the files (tests). */
  migrations?: SqlMigration[];
  controlMigrations?: SqlMigration[];
}

export interface ChecksumRepairResult {
  key: string;
  /** What differed when the target was read (inside its migration lock when applying). */
  drifted: DriftedMigration[];
  /** Versions whose checksum was re-recorded (empty in a dry run). */
  repaired: string[];
  error?: string;
}

/**
 * Records the current files' checksums as applied, for steps whose file changed after they ran
 * (`migrate repair`). Nothing is executed: the target keeps the schema the old SQL made, so this
 * is only for changes that make no difference to it (a comment, whitespace, line endings). Each
 * target is updated under the same advisory lock as its migrations and only where the ledger still
 * holds the checksum that was read (a compare-and-set), so it never races a migrating runner.
 */
export async function repairChecksums(opts: ChecksumRepairOptions): Promise<ChecksumRepairResult[]> {
  const tenantMigrations = opts.migrations ?? loadMigrations('tenant');
  const controlMigrations = opts.controlMigrations ?? loadMigrations('control');
  const control = new Client({ connectionString: opts.ownerUrl, application_name: 'strata-migrate' });
  await control.connect();
  const results: ChecksumRepairResult[] = [];
  try {
    const fleet = await listFleetTargets(control);
    const wanted = opts.targets === 'all' ? [CONTROL_TARGET_KEY, ...fleet.map((t) => t.key)] : [...new Set(opts.targets)];
    const unknown = wanted.filter((k) => k !== CONTROL_TARGET_KEY && !fleet.some((t) => t.key === k));
    if (unknown.length) throw new UnknownMigrationTargetError(unknown);

    if (wanted.includes(CONTROL_TARGET_KEY)) {
      results.push(await repairOne(control, CONTROL_TARGET_KEY, CONTROL_SCHEMA, 'control', controlMigrations, opts.apply));
    }
    // One connection per database, one target after the other: repairs are rare and small.
    const byDatabase = new Map<string, FleetTarget[]>();
    for (const t of fleet.filter((x) => wanted.includes(x.key))) {
      const k = `${t.host}:${t.port}/${t.database}`;
      byDatabase.set(k, [...(byDatabase.get(k) ?? []), t]);
    }
    for (const targets of byDatabase.values()) {
      const url = new URL(opts.ownerUrl);
      url.hostname = targets[0].host;
      url.port = String(targets[0].port);
      url.pathname = `/${encodeURIComponent(targets[0].database)}`;
      const client = new Client({ connectionString: url.toString(), application_name: 'strata-migrate' });
      try {
        await client.connect();
      } catch (err) {
        for (const t of targets) results.push({ key: t.key, drifted: [], repaired: [], error: (err as Error).message });
        continue;
      }
      try {
        for (const t of targets) {
          results.push(await repairOne(client, t.key, t.schema, 'tenant', tenantMigrations, opts.apply).catch((err: unknown) => ({
            key: t.key,
            drifted: [],
            repaired: [],
            error: (err as Error).message,
          })));
        }
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return results;
  } finally {
    await control.end().catch(() => undefined);
  }
}

async function repairOne(
  client: Client,
  key: string,
  schema: string,
  set: MigrationSet,
  migrations: SqlMigration[],
  apply: boolean,
): Promise<ChecksumRepairResult> {
  const ident = escapeIdentifier(assertIdentifier('schema', schema));
  if (!apply) return { key, drifted: driftOf(await appliedVersions(client, schema), migrations), repaired: [] };
  await client.query('BEGIN');
  try {
    // The lock migrateSchema takes for this target: no step runs while its ledger is rewritten.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext(${escapeLiteral(`strata:migrate:${set}:${schema}`)}))`);
    const drifted = driftOf(await appliedVersions(client, schema), migrations);
    const repaired: string[] = [];
    for (const d of drifted) {
      const updated = await client.query(`UPDATE ${ident}.strata_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3`, [
        d.fileChecksum,
        d.version,
        d.appliedChecksum,
      ]);
      if (updated.rowCount) repaired.push(d.version);
    }
    await client.query('COMMIT');
    return { key, drifted, repaired };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
