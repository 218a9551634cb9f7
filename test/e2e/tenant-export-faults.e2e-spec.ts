import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamicModule } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE } from '#strata/control-plane';
import { EXPORT_EXECUTOR_HOOKS, ExportExecutorKilled, type ExportExecutorHooks, type ExportStep } from '#strata/exports';
import { contentOf, downloadArchive, exportAndWait, fillTenant, openArchive, waitForExport } from '../support/export-harness';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(90_000);

/** A global module handing EXPORT_EXECUTOR_HOOKS to the ExportExecutor of one app. */
function hooksModule(hooks: ExportExecutorHooks): DynamicModule {
  class ExportFaultHooksModule {}
  return { module: ExportFaultHooksModule, global: true, providers: [{ provide: EXPORT_EXECUTOR_HOOKS, useValue: hooks }], exports: [EXPORT_EXECUTOR_HOOKS] };
}

describe('tenant exports survive their executor', () => {
  let t: TestApp;
  let filesRoot: string;
  let tenant: OnboardedTenant;
  const env = { FILES_DRIVER: process.env.FILES_DRIVER, FILES_ROOT: process.env.FILES_ROOT };
  /** The step at which the next claim of an export dies, as if its process was killed there (once). */
  let killAt: ExportStep | undefined;
  const control = () => t.app.get<DataSource>(CONTROL_DATA_SOURCE);

  beforeAll(async () => {
    filesRoot = mkdtempSync(join(tmpdir(), 'strata-export-faults-'));
    Object.assign(process.env, { FILES_DRIVER: 'local', FILES_ROOT: filesRoot });
    const hooks: ExportExecutorHooks = {
      onStep(step) {
        if (step !== killAt) return;
        killAt = undefined;
        throw new ExportExecutorKilled(`killed at ${step}`);
      },
    };
    // A short lease: a killed executor's claim runs out quickly and the export is claimed again.
    t = await startTestApp({ moveLeaseMs: 1500 }, { extra: { imports: [hooksModule(hooks)] } });
    tenant = await t.onboard('exf', 'bridge');
    await fillTenant(t, tenant);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(filesRoot, { recursive: true, force: true });
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });

  it.each(['rows', 'files', 'stored'] as ExportStep[])('resumes an export whose executor died after %s: done on the next claim, with the same content as an undisturbed one', async (step) => {
    const clean = await exportAndWait(t, tenant.id);
    killAt = step;
    const resumed = await exportAndWait(t, tenant.id);
    expect(killAt).toBeUndefined();
    expect({ state: resumed.state, attempts: resumed.attempts, error: resumed.error }).toEqual({ state: 'done', attempts: 2, error: null });
    expect(resumed.tables).toEqual(clean.tables);
    const [a, b] = await Promise.all([openArchive(await downloadArchive(t, clean.id)), openArchive(await downloadArchive(t, resumed.id))]);
    expect(contentOf(b.manifest)).toEqual(contentOf(a.manifest));
  });

  it('fails an export of a tenant that is being deleted, with the reason, and serves no archive', async () => {
    const doomed = await t.onboard('exf-doomed', 'pool');
    await control().query(`UPDATE control.tenants SET status = 'deleting' WHERE id = $1`, [doomed.id]);
    try {
      const [row] = await control().query(`INSERT INTO control.tenant_exports (tenant_id, requested_by) VALUES ($1, 'test') RETURNING id`, [doomed.id]);
      const ended = await waitForExport(t, row.id);
      expect({ state: ended.state, error: ended.error, archiveSha256: ended.archiveSha256 }).toEqual({ state: 'failed', error: `tenant ${doomed.id} is gone`, archiveSha256: null });
      const archive = await t.http().get(`/admin/exports/${row.id}/archive`).set('authorization', `Bearer ${t.adminToken}`).expect(409);
      expect(archive.body.error).toBe('export_not_ready');
    } finally {
      await control().query(`UPDATE control.tenants SET status = 'active' WHERE id = $1`, [doomed.id]);
    }
  });
});
