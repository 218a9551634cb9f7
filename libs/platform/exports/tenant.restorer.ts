import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { QueryFailedError } from 'typeorm';
import {
  AUDIT_LOG,
  CONTROL_DATA_SOURCE,
  PoolEntity,
  TenantEntity,
  TENANT_CHANGE_PUBLISHER,
  TenantRegistry,
  type AuditActor,
  type AuditTrail,
  type TenantChangePublisher,
  type Tier,
} from '#strata/control-plane';
import { STORAGE_DRIVER, type StorageDriver } from '#strata/storage';
import { OwnerConnections, quoteIdent, TENANT_SCHEMA_VERSION, tenantTablesOf, TierDrivers, type TenantHome, type TenantTable } from '#strata/tenancy/platform';
import { ArchiveInvalidError, Digest, drain, parseMemberLine, readArchive } from './export-archive';
import { exportError, ExportErrorCode } from './exports.errors';
import { tenantHomeSession } from './home-session';
import { TenantExportsRepository } from './tenant-exports.repository';
import { MEMBERS_PATH, type ExportedMember, type ExportManifest, type TenantExportRecord } from './tenant-export.types';

const INSERT_BATCH = 1000;

/** What a restore put into the new home: per table its rows, and the files. */
export interface RestoreReport {
  exportId: string;
  tenantId: string;
  tables: Array<{ name: string; rows: number }>;
  files: number;
  /** Memberships the archive listed: given back to users of this control plane (by id, else by email), or skipped (no such user). */
  members: { restored: number; skipped: number };
  archiveSha256: string;
}

export interface RestoreAsNewTenant {
  exportId: string;
  slug: string;
  tier: Tier;
  /** Default: the tier's default pool. */
  poolId?: string;
  /** Default: the exported tenant's name. */
  name?: string;
}

/**
 * Fills a freshly provisioned, migrated, empty home from an export's archive: every row with its
 * own id, parents before children, in one transaction on the home; sequences carried past the
 * values the source handed out; the files back under the new tenant's storage prefix.
 *
 * The archive is read twice, as a stream each time: first only to verify it (its sha256 against
 * the export record, every entry against the manifest), so a tampered archive is refused before
 * anything is written; then to restore, verifying again as it goes — the rows are committed, and
 * the files kept, only once every entry matched.
 *
 * Rows carry no tenant_id in the archive: they are written with the new tenant's, so a restore may
 * sit beside the tenant it was exported from (same row ids, other tenant id: every key leads with
 * tenant_id) and into any tier, which hold the same tables (one table shape, three placements).
 */
@Injectable()
export class TenantRestorer {
  private readonly logger = new Logger('TenantRestorer');

  constructor(
    private readonly exports: TenantExportsRepository,
    private readonly drivers: TierDrivers,
    private readonly owners: OwnerConnections,
    private readonly registry: TenantRegistry,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    @Inject(TENANT_SCHEMA_VERSION) private readonly requiredVersion: string,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
  ) {}

  /** The export, `done`, with a readable archive that matches its record and this release's schema; answers its manifest. */
  async verify(exportId: string): Promise<{ record: TenantExportRecord; manifest: ExportManifest; members: ExportedMember[] }> {
    const record = await this.exports.findById(exportId);
    if (!record) throw exportError(ExportErrorCode.exportNotFound, 'export not found');
    if (record.state !== 'done' || !record.archiveKey || !record.archiveSha256) {
      throw exportError(ExportErrorCode.exportNotReady, `export ${exportId} is ${record.state}; only a done export can be restored`);
    }
    const { manifest, members } = await this.read(record);
    if (manifest.schemaVersion !== this.requiredVersion) {
      throw exportError(ExportErrorCode.exportSchemaMismatch, `the archive's rows are at tenant schema version ${manifest.schemaVersion}, this release needs ${this.requiredVersion}`);
    }
    return { record, manifest, members };
  }

  /**
   * Restores export `exportId` into `tenant`'s home, which must exist, be migrated to this release
   * and hold nothing of the tenant (no rows, no files). Verifies first; on any failure it leaves
   * the home and the storage prefix as empty as it found them.
   */
  async restore(exportId: string, tenant: Pick<TenantEntity, 'id'>, home: TenantHome, options: { alreadyRestored?: 'refuse' | 'ok' } = {}): Promise<RestoreReport> {
    const { record, manifest, members } = await this.verify(exportId);
    const session = await tenantHomeSession(this.owners, home, tenant.id, 'strata-restore');
    if (options.alreadyRestored === 'ok') {
      // A step run again (onboarding pipeline): rows commit in one transaction after every file was
      // stored, so a home holding exactly the export's row counts was restored by an earlier attempt.
      const done = await this.restoredCounts(session, home, manifest, tenant.id).catch(async (err: unknown) => {
        await session.end().catch(() => undefined);
        throw err;
      });
      if (done) {
        await session.end().catch(() => undefined);
        // The memberships come after the rows' commit: a step that died in between adds them now.
        const restoredMembers = await this.restoreMembers(tenant.id, members);
        return { exportId, tenantId: tenant.id, tables: done, files: manifest.files.length, members: restoredMembers, archiveSha256: record.archiveSha256! };
      }
    }
    const stored: string[] = [];
    const restored = new Map<string, number>();
    try {
      const tables = await tenantTablesOf(session, home.schema);
      const byName = new Map(tables.map((t) => [t.name, t]));
      const unknown = manifest.tables.filter((t) => !byName.has(t.name)).map((t) => t.name);
      const absent = tables.filter((t) => !manifest.tables.some((m) => m.name === t.name)).map((t) => t.name);
      if (unknown.length || absent.length) {
        throw exportError(ExportErrorCode.exportSchemaMismatch, `the archive's tables differ from the home's (only in the archive: ${unknown.join(', ') || 'none'}; only in the home: ${absent.join(', ') || 'none'})`);
      }
      await this.assertEmpty(session, home, tables, tenant.id);
      const prefix = `${tenant.id}/`;
      if ((await this.storage.list(prefix)).length) throw new Error(`the storage prefix ${prefix} is not empty; a restore only fills an empty one`);

      await session.query('BEGIN');
      const filesByPath = new Map(manifest.files.map((f) => [f.path, f]));
      const tablesByPath = new Map(manifest.tables.map((t) => [t.path, byName.get(t.name)!]));
      const { archive, digest: archiveDigest } = await this.openHashed(record.archiveKey!);
      await readArchive(archive, async (path, body) => {
        const table = tablesByPath.get(path);
        if (table) {
          restored.set(table.name, await this.insertRows(session, home, table, tenant.id, body));
          return;
        }
        // Read and checked by verify(); added to the control plane once the rows are committed.
        if (path === MEMBERS_PATH) return drain(path, body);
        const file = filesByPath.get(path)!;
        const key = `${prefix}${file.key}`;
        stored.push(key);
        await this.storage.put(key, body, { contentType: file.contentType ?? 'application/octet-stream', size: file.bytes });
      });
      if (archiveDigest.hex() !== record.archiveSha256) throw new ArchiveInvalidError('the archive changed while it was restored');
      for (const s of manifest.sequences) {
        const seq = `${quoteIdent(home.schema)}.${quoteIdent(s.name)}`;
        const exists = await session.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [seq]);
        if (exists.rows[0].ok) await session.query(`SELECT setval($1::regclass, GREATEST($2::bigint, (SELECT last_value FROM ${seq})))`, [seq, s.last]);
      }
      await session.query('COMMIT');
    } catch (err) {
      await session.query('ROLLBACK').catch(() => undefined);
      for (const key of stored) await this.storage.delete(key).catch(() => undefined);
      throw this.refusal(err);
    } finally {
      await session.end().catch(() => undefined);
    }
    return {
      exportId,
      tenantId: tenant.id,
      tables: manifest.tables.map((t) => ({ name: t.name, rows: restored.get(t.name) ?? 0 })),
      files: manifest.files.length,
      members: await this.restoreMembers(tenant.id, members),
      archiveSha256: record.archiveSha256!,
    };
  }

  /**
   * Gives the exported members their roles in the restored tenant: the user with the exported id,
   * else the one with the exported email (one person's account, recreated); a member who has
   * neither here (an archive from another control plane, a user removed since) is skipped — an
   * operator invites them. One statement, again a no-op: a retried step adds nobody twice.
   */
  private async restoreMembers(tenantId: string, members: ExportedMember[]): Promise<{ restored: number; skipped: number }> {
    if (!members.length) return { restored: 0, skipped: 0 };
    const rows: Array<{ found: number }> = await this.control.query(
      `WITH m AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS m("userId" uuid, email text, role text)),
       found AS (
         SELECT coalesce(by_id.id, by_email.id) AS user_id, m.role FROM m
           LEFT JOIN control.users by_id ON by_id.id = m."userId"
           LEFT JOIN control.users by_email ON by_email.email = m.email
          WHERE coalesce(by_id.id, by_email.id) IS NOT NULL),
       added AS (
         INSERT INTO control.memberships (user_id, tenant_id, role) SELECT user_id, $1, role FROM found
         ON CONFLICT (user_id, tenant_id) DO NOTHING)
       SELECT (SELECT count(*) FROM found)::int AS found`,
      [tenantId, JSON.stringify(members)],
    );
    const restored = rows[0]?.found ?? 0;
    if (restored < members.length) this.logger.warn(`tenant ${tenantId}: ${members.length - restored} exported member(s) have no account here and were not added`);
    return { restored, skipped: members.length - restored };
  }

  /**
   * The CLI's restore: a new tenant `slug` on `tier` (record `provisioning` → home created and
   * migrated by its tier driver → filled from the archive → `active`). Verifies the archive before
   * creating anything; on failure removes only what it created (never a home that existed).
   */
  async restoreAsNewTenant(input: RestoreAsNewTenant, actor: AuditActor = { type: 'system' }): Promise<{ tenant: TenantEntity; report: RestoreReport }> {
    const { manifest } = await this.verify(input.exportId);
    const pools = this.control.getRepository(PoolEntity);
    const pool = input.poolId ? await pools.findOneBy({ id: input.poolId }) : await pools.findOneBy({ kind: input.tier, isDefault: true });
    if (!pool || pool.kind !== input.tier) throw new Error(`no ${input.tier} pool ${input.poolId ?? '(default)'} is registered`);
    const tenants = this.control.getRepository(TenantEntity);
    const driver = this.drivers.of(input.tier);
    let tenant: TenantEntity;
    try {
      tenant = await tenants.save(
        tenants.create({
          slug: input.slug,
          name: input.name ?? manifest.tenant.name,
          tier: input.tier,
          poolId: pool.id,
          status: 'provisioning',
          plan: manifest.tenant.plan,
          region: 'local',
          settings: {},
          ...driver.placementFor(input.slug),
        }),
      );
    } catch (err) {
      const code = (err as QueryFailedError & { driverError?: { code?: string } }).driverError?.code;
      if (err instanceof QueryFailedError && code === '23505') throw new Error(`slug ${input.slug} is taken`);
      throw err;
    }
    const home = driver.homeOf(tenant, pool);
    let created = false;
    try {
      await driver.provision(home);
      created = true;
      const report = await this.restore(input.exportId, tenant, home);
      // Active together with its audit entry, as onboarding does: nothing is onboarded unrecorded.
      await this.control.transaction(async (em) => {
        await em.getRepository(TenantEntity).update({ id: tenant.id }, { status: 'active', schemaVersion: this.requiredVersion });
        await this.audit.record(
          { action: 'tenant.onboarded', tenantId: tenant.id, actor, details: { slug: tenant.slug, tier: tenant.tier, poolId: pool.id, plan: tenant.plan, restoredFrom: input.exportId } },
          em,
        );
      });
      if (tenant.tier === 'pool' && pool.schemaVersion < this.requiredVersion) await pools.update({ id: pool.id }, { schemaVersion: this.requiredVersion });
      this.registry.invalidateTenant(tenant);
      await this.changes?.publishTenantChanged(tenant);
      this.logger.log(`export ${input.exportId} restored as tenant ${tenant.id} (${input.slug}, ${input.tier})`);
      return { tenant: (await tenants.findOneBy({ id: tenant.id }))!, report };
    } catch (err) {
      if (created) await driver.drop(home, tenant.id).catch((e: unknown) => this.logger.error(`could not remove the home of ${tenant.id}: ${(e as Error).message}`));
      await tenants.delete({ id: tenant.id });
      throw err;
    }
  }

  /** The manifest and the member list (read here, kept in memory: a member list is small), once every entry matched. */
  private async read(record: TenantExportRecord): Promise<{ manifest: ExportManifest; members: ExportedMember[] }> {
    try {
      const { archive, digest } = await this.openHashed(record.archiveKey!);
      const members: ExportedMember[] = [];
      const manifest = await readArchive(archive, async (path, body) => {
        if (path !== MEMBERS_PATH) return drain(path, body);
        for await (const line of createInterface({ input: body, crlfDelay: Infinity })) if (line) members.push(parseMemberLine(line));
      });
      const sha256 = digest.hex();
      if (sha256 !== record.archiveSha256) throw new ArchiveInvalidError(`the archive's sha256 is ${sha256}, export ${record.id} recorded ${record.archiveSha256}`);
      if (manifest.exportId !== record.id || manifest.tenant.id !== record.tenantId) throw new ArchiveInvalidError(`the archive is not export ${record.id}'s`);
      return { manifest, members };
    } catch (err) {
      throw this.refusal(err);
    }
  }

  /** The stored archive, hashed as it is read; the stored object's stream is closed with it. */
  private async openHashed(key: string): Promise<{ archive: Readable; digest: Digest }> {
    const source = (await this.storage.get(key)).stream;
    const digest = new Digest();
    source.on('error', (err) => digest.destroy(err));
    digest.on('close', () => source.destroy());
    return { archive: source.pipe(digest), digest };
  }

  private refusal(err: unknown): unknown {
    return err instanceof ArchiveInvalidError ? exportError(ExportErrorCode.exportArchiveInvalid, `the archive is refused: ${err.message}`) : err;
  }

  /** The per-table counts when the home holds exactly the manifest's rows of the tenant, else null (nothing, or something else). */
  private async restoredCounts(session: import('pg').Client, home: TenantHome, manifest: ExportManifest, tenantId: string): Promise<Array<{ name: string; rows: number }> | null> {
    const counts: Array<{ name: string; rows: number }> = [];
    for (const t of manifest.tables) {
      const r = await session.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ${quoteIdent(home.schema)}.${quoteIdent(t.name)} WHERE tenant_id = $1`, [tenantId]);
      counts.push({ name: t.name, rows: Number(r.rows[0].n) });
    }
    const total = counts.reduce((n, c) => n + c.rows, 0);
    const expected = manifest.tables.reduce((n, t) => n + t.rows, 0);
    return total > 0 && total === expected && counts.every((c, i) => c.rows === manifest.tables[i].rows) ? counts : null;
  }

  private async assertEmpty(session: import('pg').Client, home: TenantHome, tables: TenantTable[], tenantId: string): Promise<void> {
    for (const t of tables) {
      const r = await session.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${quoteIdent(home.schema)}.${quoteIdent(t.name)} WHERE tenant_id = $1) AS any`, [tenantId]);
      if (r.rows[0].any) throw new Error(`the home already holds rows of tenant ${tenantId} in ${t.name}; a restore only fills an empty home`);
    }
  }

  /** Batched INSERT … SELECT FROM jsonb_populate_recordset, tenant_id from the new tenant; answers the rows written. */
  private async insertRows(session: import('pg').Client, home: TenantHome, table: TenantTable, tenantId: string, body: Readable): Promise<number> {
    const qualified = `${quoteIdent(home.schema)}.${quoteIdent(table.name)}`;
    const cols = table.columns.map(quoteIdent).join(', ');
    const values = table.columns.map((c) => (c === 'tenant_id' ? '$2::uuid' : quoteIdent(c))).join(', ');
    const sql = `INSERT INTO ${qualified} (${cols}) SELECT ${values} FROM jsonb_populate_recordset(NULL::${qualified}, $1::jsonb)`;
    let batch: string[] = [];
    let n = 0;
    const flush = async () => {
      if (!batch.length) return;
      await session.query(sql, [`[${batch.join(',')}]`, tenantId]);
      n += batch.length;
      batch = [];
    };
    for await (const line of createInterface({ input: body, crlfDelay: Infinity })) {
      if (!line) continue;
      batch.push(line);
      if (batch.length >= INSERT_BATCH) await flush();
    }
    await flush();
    return n;
  }
}
