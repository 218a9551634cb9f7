import { createReadStream } from 'node:fs';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { DutyCycle, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { LeasedExecutor, LeaseKeeper, LeaseLost } from '#strata/leases';
import { CONTROL_DATA_SOURCE, PoolEntity, TenantEntity } from '#strata/control-plane';
import { STORAGE_DRIVER, type StorageDriver } from '#strata/storage';
import { OwnerConnections, quoteIdent, tenantTablesOf, TierDrivers } from '#strata/tenancy/platform';
import { ArchiveBuilder } from './export-archive';
import { sequencesOf, tenantHomeSession } from './home-session';
import { TenantExportsRepository, type ExportResult } from './tenant-exports.repository';
import { archiveKeyOf, MANIFEST_FORMAT, MEMBERS_PATH, type ExportedMember, type ExportManifest, type TenantExportRecord } from './tenant-export.types';

/** Points an executor passes; tests stop it at one to prove an export is resumed by another process. */
export type ExportStep = 'rows' | 'files' | 'stored';
/** Thrown by a test hook: the executor drops the export on the spot, as if its process died (lease kept). */
export class ExportExecutorKilled extends Error {}
export interface ExportExecutorHooks {
  onStep?(step: ExportStep, record: TenantExportRecord): void | Promise<void>;
}
export const EXPORT_EXECUTOR_HOOKS = Symbol('EXPORT_EXECUTOR_HOOKS');

/** Errors no retry can fix: the export fails at once. */
class FatalExportError extends Error {}

const POLL_MS = 1000;
const MAX_ATTEMPTS = 3;
const BATCH = 5000;
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * Runs tenant exports. Every process that runs moves (MOVES_EXECUTOR, on by default: API, worker)
 * has one: it claims a queued export with a lease in control.tenant_exports (MOVE_LEASE_MS),
 * renews it while it works, and produces the archive. An export is one read-only snapshot plus a
 * file written under a key of its own, so a process that dies leaves nothing to undo: the next
 * executor to claim it after the lease ran out starts it over and overwrites the same key.
 */
@Injectable()
export class ExportExecutor extends LeasedExecutor {
  constructor(
    private readonly exports: TenantExportsRepository,
    private readonly drivers: TierDrivers,
    private readonly owners: OwnerConnections,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    @Optional() @Inject(EXPORT_EXECUTOR_HOOKS) private readonly hooks?: ExportExecutorHooks,
  ) {
    super('export executor', 'ExportExecutor', POLL_MS);
  }

  protected polls(): boolean {
    return this.config.movesExecutor;
  }

  /** Claims and runs open exports until none is left (tests and the CLI call it directly). */
  async drain(): Promise<void> {
    await this.poll.drain(() => this.exports.claim(this.owner, this.config.moveLeaseMs), (record) => this.execute(record));
  }

  /** Runs one claimed export to its end (done, failed, or released for a retry). */
  async execute(record: TenantExportRecord): Promise<void> {
    const lease = LeaseKeeper.start({ leaseMs: this.config.moveLeaseMs, renew: () => this.exports.renew(record.id, this.owner, this.config.moveLeaseMs) });
    const builder = new ArchiveBuilder();
    try {
      const result = await this.produce(record, builder, () => lease.assert());
      const done = await this.exports.finish(record.id, this.owner, result);
      if (!done) {
        // Purged meanwhile (offboarding): the archive it just stored belongs to no record, so it goes too.
        if (!(await this.exports.findById(record.id))) await this.storage.delete(result.archiveKey).catch(() => undefined);
        throw new LeaseLost();
      }
      this.logger.log(`export ${record.id}: tenant ${record.tenantId}, ${result.rowsExported} rows and ${result.filesExported} files, ${result.archiveBytes} bytes`);
    } catch (err) {
      if (err instanceof ExportExecutorKilled || err instanceof LeaseLost) {
        this.logger.warn(`export ${record.id}: ${err instanceof LeaseLost ? 'lease lost' : 'executor stopped'}; another executor starts it over`);
        return;
      }
      const message = (err as Error)?.message ?? String(err);
      if (err instanceof FatalExportError || record.attempts >= MAX_ATTEMPTS) {
        this.logger.error(`export ${record.id} failed: ${message}`);
        await this.exports.fail(record.id, this.owner, message).catch(() => undefined);
      } else {
        this.logger.warn(`export ${record.id}: attempt ${record.attempts} failed (${message}); retrying`);
        await this.exports.release(record.id, this.owner, 500 * record.attempts, message).catch(() => undefined);
      }
    } finally {
      lease.stop();
      await builder.dispose();
    }
  }

  private async produce(record: TenantExportRecord, builder: ArchiveBuilder, assertLease: () => void): Promise<ExportResult> {
    // Read where the tenant lives now: a tenant moved before is read from its current home.
    const tenant = await this.control.getRepository(TenantEntity).findOneBy({ id: record.tenantId });
    if (!tenant || tenant.status === 'deleted' || tenant.status === 'deleting') throw new FatalExportError(`tenant ${record.tenantId} is gone`);
    const pool = await this.control.getRepository(PoolEntity).findOneBy({ id: tenant.poolId });
    if (!pool) throw new FatalExportError(`pool ${tenant.poolId} is not registered`);
    const driver = this.drivers.of(tenant.tier);
    const home = driver.homeOf(tenant, pool);
    const schemaVersion = driver.schemaVersionOf(tenant, pool);

    const manifest: ExportManifest = {
      format: MANIFEST_FORMAT,
      version: 1,
      exportId: record.id,
      createdAt: new Date().toISOString(),
      tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name, plan: tenant.plan, tier: tenant.tier },
      schemaVersion,
      tables: [],
      sequences: [],
      files: [],
    };
    let rowsExported = 0;
    const session = await tenantHomeSession(this.owners, home, tenant.id, 'strata-export');
    try {
      // Every table at one snapshot, parents before children: the archive is one instant of the tenant.
      await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const tables = await tenantTablesOf(session, home.schema);
      if (!tables.length) throw new FatalExportError(`no tenant tables in schema ${home.schema} of ${home.database}`);
      const cycle = new DutyCycle(this.config.moveCopyRestRatio);
      for (const t of tables) {
        const out = await builder.table();
        let after = ZERO_UUID;
        for (;;) {
          assertLease();
          // tenant_id is left out: the rows restore into any tenant id, and re-exporting a restored
          // tenant gives byte-identical files (the same checksums).
          // A duty cycle like a move's copy (MOVE_COPY_REST_RATIO): the tenants still served on this
          // server should not feel a whole-tenant scan more than they must.
          const batch = await cycle.run(async () => {
            const read = await session.query<{ line: string; id: string }>(
              `SELECT (to_jsonb(t) - 'tenant_id')::text AS line, t.id::text AS id
                 FROM ${quoteIdent(home.schema)}.${quoteIdent(t.name)} t WHERE tenant_id = $1 AND id > $2::uuid ORDER BY id LIMIT ${BATCH}`,
              [tenant.id, after],
            );
            for (const r of read.rows) await out.write(r.line);
            return read;
          });
          rowsExported += batch.rows.length;
          if (batch.rows.length < BATCH) break;
          after = batch.rows[batch.rows.length - 1].id;
          await this.exports.progress(record.id, this.owner, rowsExported, 0);
        }
        const written = await out.close();
        const path = `tables/${t.name}.jsonl`;
        builder.addStaged(path, out.file, written.bytes, written.sha256);
        manifest.tables.push({ name: t.name, path, rows: written.rows, bytes: written.bytes, sha256: written.sha256 });
      }
      manifest.sequences = await sequencesOf(session, home.schema);
      await session.query('COMMIT');
    } catch (err) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await session.end().catch(() => undefined);
    }
    await this.exports.progress(record.id, this.owner, rowsExported, 0);
    await this.step('rows', record);

    // Who belongs to the tenant (control plane), so a restore brings its people back and an owner's
    // export says who had access. Emails and roles only: no password hash, no session.
    const members: ExportedMember[] = await this.control.query(
      `SELECT m.user_id::text AS "userId", u.email, m.role FROM control.memberships m JOIN control.users u ON u.id = m.user_id
        WHERE m.tenant_id = $1 ORDER BY u.email, m.user_id`,
      [tenant.id],
    );
    const out = await builder.table();
    for (const m of members) await out.write(JSON.stringify({ userId: m.userId, email: m.email, role: m.role }));
    const written = await out.close();
    builder.addStaged(MEMBERS_PATH, out.file, written.bytes, written.sha256);
    manifest.members = { path: MEMBERS_PATH, rows: written.rows, bytes: written.bytes, sha256: written.sha256 };

    // Every object under the tenant's prefix, by its key relative to it.
    const prefix = `${tenant.id}/`;
    // Sorted: the driver lists in no particular order, and the archive (and its checksums) should not depend on it.
    for (const fullKey of (await this.storage.list(prefix)).sort()) {
      assertLease();
      const key = fullKey.slice(prefix.length);
      const stored = await this.storage.get(fullKey);
      const path = `files/${key}`;
      const { bytes, sha256 } = await builder.addStream(path, stored.stream);
      manifest.files.push({ key, path, bytes, sha256, ...(stored.contentType ? { contentType: stored.contentType } : {}) });
    }
    await this.exports.progress(record.id, this.owner, rowsExported, manifest.files.length);
    await this.step('files', record);

    const archive = await builder.pack(manifest);
    assertLease();
    const archiveKey = archiveKeyOf(record.id);
    await this.storage.put(archiveKey, createReadStream(archive.file), { contentType: 'application/gzip', size: archive.bytes });
    await this.step('stored', record);
    return {
      tier: tenant.tier,
      schemaVersion,
      rowsExported,
      filesExported: manifest.files.length,
      tables: manifest.tables.map((t) => ({ name: t.name, rows: t.rows, sha256: t.sha256 })),
      archiveKey,
      archiveBytes: archive.bytes,
      archiveSha256: archive.sha256,
    };
  }

  private async step(step: ExportStep, record: TenantExportRecord): Promise<void> {
    await this.hooks?.onStep?.(step, record);
  }
}
