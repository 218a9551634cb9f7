/**
 * Tenant export and restore bench: bulk-loads one pool tenant with --rows rows (10 % projects, 50 %
 * tasks, 40 % invoices) and --files files of --file-kb KiB, exports it (libs/platform/exports, run
 * in this process), then restores the archive as a new tenant on each tier and prints, per step,
 * the time, rows/s and the archive's size. Checks that every restore's per-table row counts equal
 * the export's. See bench/README.md.
 *
 *   npm run bench:export -- [--rows 100000] [--files 20] [--file-kb 256]
 *
 * Exits 1 when an export fails or a restore's counts differ.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClsModule } from 'nestjs-cls';
import { AdminModule, TenantAdminService } from '#strata/admin';
import { loadStrataConfig, StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule, TIERS, type Tier } from '#strata/control-plane';
import { ExportExecutor, ExportsRunnerModule, ExportsService, TenantRestorer } from '#strata/exports';
import { MigratorModule } from '#strata/migrator';
import { STORAGE_DRIVER, StorageModule, type StorageDriver } from '#strata/storage';
import { TenancyModule } from '#strata/tenancy/platform';
import { BenchDatabase, withClient } from './bench-database';

@Module({})
class ExportBenchModule {
  static forRoot(config: StrataConfig, filesRoot: string): DynamicModule {
    return {
      module: ExportBenchModule,
      imports: [
        StrataConfigModule.forRoot(config),
        ClsModule.forRoot({ global: true }),
        ControlPlaneModule,
        MigratorModule,
        TenancyModule,
        AdminModule,
        StorageModule.forRoot({ driver: 'local', root: filesRoot }),
        ExportsRunnerModule,
      ],
    };
  }
}

const ms = (started: number) => Math.round(performance.now() - started);
const perSecond = (n: number, took: number) => Math.round((n * 1000) / Math.max(1, took)).toLocaleString('en-US');

async function main(): Promise<number> {
  const { values } = parseArgs({ args: process.argv.slice(2), strict: true, options: { rows: { type: 'string' }, files: { type: 'string' }, 'file-kb': { type: 'string' } } });
  const rows = Number(values.rows ?? 100_000);
  const files = Number(values.files ?? 20);
  const fileKb = Number(values['file-kb'] ?? 256);
  const db = new BenchDatabase();
  const filesRoot = mkdtempSync(join(tmpdir(), 'strata-export-bench-'));
  process.once('SIGINT', () => void db.drop().finally(() => process.exit(130)));
  await db.create();
  try {
    // The executor is driven by hand here (drain), so nothing polls in the background.
    // Flat out unless MOVE_COPY_REST_RATIO says otherwise: the export's own speed, not its duty cycle.
    const config = loadStrataConfig({
      ...process.env,
      DATABASE_URL: db.ownerUrl,
      DB_APP_USER: db.appRole,
      AUTH_JWT_SECRET: randomBytes(32).toString('hex'),
      MOVES_EXECUTOR: 'false',
      MOVE_COPY_REST_RATIO: process.env.MOVE_COPY_REST_RATIO ?? '0',
    });
    const app = await NestFactory.createApplicationContext(ExportBenchModule.forRoot(config, filesRoot), { logger: ['error'] });
    try {
      const tenant = await app.get(TenantAdminService).create({ slug: db.slug('exp'), name: 'export bench', tier: 'pool' });
      const projects = Math.max(1, Math.floor(rows / 10));
      const tasksPerProject = 5;
      const invoices = rows - projects - projects * tasksPerProject;
      await withClient(db.ownerUrl, async (c) => {
        await c.query(`SELECT set_config('search_path', 'shared', false), set_config('app.tenant_id', $1, false)`, [tenant.id]);
        await c.query(`INSERT INTO projects (tenant_id, name, description) SELECT $1, 'project ' || g, repeat('d', 80) FROM generate_series(1, $2::int) g`, [tenant.id, projects]);
        await c.query(`INSERT INTO tasks (tenant_id, project_id, title) SELECT $1, p.id, 'task ' || g FROM projects p, generate_series(1, $2::int) g WHERE p.tenant_id = $1`, [tenant.id, tasksPerProject]);
        await c.query(`INSERT INTO invoices (tenant_id, number, amount, currency) SELECT $1, 'INV-' || g, g, 'EUR' FROM generate_series(1, $2::int) g`, [tenant.id, Math.max(0, invoices)]);
      });
      const storage = app.get<StorageDriver>(STORAGE_DRIVER);
      for (let i = 0; i < files; i++) await storage.put(`${tenant.id}/files/bench-${i}`, randomBytes(fileKb * 1024), { contentType: 'application/octet-stream' });

      const exportsService = app.get(ExportsService);
      let started = performance.now();
      const requested = await exportsService.request(tenant.id, 'operator:bench', { type: 'operator', id: 'bench' });
      await app.get(ExportExecutor).drain();
      const exported = await exportsService.get(requested.id);
      const exportMs = ms(started);
      if (exported.state !== 'done') {
        console.error(`export ${exported.id} ${exported.state}: ${exported.error}`);
        return 1;
      }
      const mib = (exported.archiveBytes! / 1024 / 1024).toFixed(1);
      console.log(`rows ${exported.rowsExported.toLocaleString('en-US')}, files ${exported.filesExported} × ${fileKb} KiB, archive ${mib} MiB, MOVE_COPY_REST_RATIO ${config.moveCopyRestRatio}`);
      console.log(`export            ${String(exportMs).padStart(6)} ms  ${perSecond(exported.rowsExported, exportMs)} rows/s`);
      let bad = 0;
      for (const tier of TIERS as Tier[]) {
        started = performance.now();
        const { report } = await app.get(TenantRestorer).restoreAsNewTenant({ exportId: exported.id, slug: db.slug(`r-${tier}`), tier });
        const took = ms(started);
        const same = JSON.stringify(report.tables) === JSON.stringify(exported.tables.map((t) => ({ name: t.name, rows: t.rows })));
        if (!same) bad++;
        console.log(`restore → ${tier.padEnd(6)} ${String(took).padStart(6)} ms  ${perSecond(exported.rowsExported, took)} rows/s  (verify + fill)${same ? '' : '  ✗ counts differ'}`);
      }
      return bad ? 1 : 0;
    } finally {
      await app.close();
    }
  } finally {
    await db.drop();
    rmSync(filesRoot, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
