import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Global, Module, type DynamicModule } from '@nestjs/common';
import {
  DELETION_STEPS,
  OFFBOARDING_EXECUTOR_HOOKS,
  OffboardingKilled,
  type DeletionReportView,
  type DeletionStep,
  type OffboardingExecutorHooks,
} from '#strata/offboarding';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { waitFor } from '../support/tenancy-fixture';
import { uploadFile } from '../support/files-fixture';
import { scanTenantStores, type FileStore } from '../support/tenant-store-scanner';

jest.setTimeout(120_000);

/** Kills the executor once, at one step of one tenant's deletion, before or after the step ran. */
class Killer implements OffboardingExecutorHooks {
  target?: { tenantId: string; step: DeletionStep; when: 'before' | 'after' };
  killed = 0;
  onStep(step: DeletionStep, deletion: { tenantId: string }, when: 'before' | 'after'): void {
    const t = this.target;
    if (t && t.tenantId === deletion.tenantId && t.step === step && t.when === when) {
      this.target = undefined;
      this.killed++;
      throw new OffboardingKilled(`killed ${when} ${step}`);
    }
  }
}

@Global()
@Module({})
class OffboardingFaultHooksModule {}
const hooksModule = (hooks: OffboardingExecutorHooks): DynamicModule => ({
  module: OffboardingFaultHooksModule,
  global: true,
  providers: [{ provide: OFFBOARDING_EXECUTOR_HOOKS, useValue: hooks }],
  exports: [OFFBOARDING_EXECUTOR_HOOKS],
});

const STEPS = DELETION_STEPS.filter((s) => s !== 'done');

describe('offboarding killed mid-way resumes in another claim and still leaves nothing', () => {
  let t: TestApp;
  let root: string;
  let files: FileStore;
  const killer = new Killer();
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'strata-offboarding-faults-'));
    process.env.FILES_DRIVER = 'local';
    process.env.FILES_ROOT = root;
    files = { local: root };
    // A short lease: a killed executor's claim runs out within a second, then the deletion is claimed again.
    t = await startTestApp({ moveLeaseMs: 1000 }, { extra: { imports: [hooksModule(killer)] } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const cases = STEPS.flatMap((step) => (['before', 'after'] as const).map((when) => [step, when] as const));

  it.each(cases)('finishes a deletion killed %s (%s the step ran)', async (step, when) => {
    const tenant: OnboardedTenant = await t.onboard(`off-kill`, step === 'home' && when === 'after' ? 'silo' : 'pool');
    await t.http().post('/projects').set({ 'X-Tenant': tenant.slug, authorization: `Bearer ${tenant.token}` }).send({ name: 'doomed' }).expect(201);
    await uploadFile(t, tenant, 'bytes').expect(201);
    killer.target = { tenantId: tenant.id, step, when };
    const killedBefore = killer.killed;
    await t.http().delete(`/admin/tenants/${tenant.id}`).set(admin()).expect(202);
    const last = await waitFor(
      async () => (await t.http().get(`/admin/tenants/${tenant.id}/deletion-report`).set(admin())).body as DeletionReportView,
      (r) => r.status === 'deleted',
      30_000,
      100,
    );
    expect(killer.killed).toBe(killedBefore + 1);
    expect(last).toMatchObject({ status: 'deleted', step: 'done' });
    // Each step is recorded once, in order, even the one that ran twice.
    expect(last.stores.map((s) => s.step)).toEqual(STEPS);
    // Control-plane steps commit with their record: even one killed after its deletes reports exact counts.
    expect(last.stores.find((s) => s.step === 'control_plane')?.removed).toMatchObject({ memberships: 1, users: 1, refresh_families: 1 });
    expect(await scanTenantStores(t, { id: tenant.id, slug: tenant.slug, soleUserIds: [tenant.userId] }, files)).toEqual([]);
  });
});
