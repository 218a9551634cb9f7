import { Test } from '@nestjs/testing';
import { ClsModule } from 'nestjs-cls';
import { StrataConfigModule } from '#strata/common';
import { ControlPlaneModule, TenantRegistry } from '#strata/control-plane';
import { TenancyModule, TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { AdminModule, TenantAdminService } from '#strata/admin';
import { toPlacement } from '#strata/auth';
import { createTestDatabase, uniqueSlug } from '../support/test-database';
import { testConfig } from '../support/test-config';

describe('smoke', () => {
  it('runs a unit of work on every tier', async () => {
    const db = await createTestDatabase();
    const mod = await Test.createTestingModule({
      imports: [StrataConfigModule.forRoot(testConfig(db)), ClsModule.forRoot({ global: true }), ControlPlaneModule, TenancyModule, AdminModule],
    }).compile();
    await mod.init();
    const admin = mod.get(TenantAdminService);
    const registry = mod.get(TenantRegistry);
    const ctx = mod.get(TenantContext);
    const conn = mod.get(TenantConnectionManager);
    try {
      for (const tier of ['pool', 'bridge', 'silo'] as const) {
        const t = await admin.create({ slug: uniqueSlug(tier), name: tier, tier });
        const rec = (await registry.findById(t.id))!;
        const out = await ctx.run({ tenant: toPlacement(rec) }, () =>
          conn.transaction(async (em) => {
            await em.query(`INSERT INTO projects (name) VALUES ('p1')`);
            return em.query(`SELECT tenant_id, current_schema() AS s, current_database() AS d FROM projects`);
          }),
        );
        expect(out).toEqual([{ tenant_id: t.id, s: rec.schemaName, d: rec.databaseName ?? db.name }]);
      }
    } finally {
      await mod.close();
      await db.drop();
    }
  });
});
