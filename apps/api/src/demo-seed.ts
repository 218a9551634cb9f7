import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { TenantAdminService } from '#strata/admin';
import { CONTROL_DATA_SOURCE, TenantEntity, type Tier } from '#strata/control-plane';
import { JwtService } from '#strata/auth';

export const DEMO_TENANTS: Array<{ slug: string; name: string; tier: Tier; email: string }> = [
  { slug: 'acme', name: 'Acme Corp', tier: 'pool', email: 'ada@acme.test' },
  { slug: 'globex', name: 'Globex', tier: 'bridge', email: 'hank@globex.test' },
  { slug: 'initech', name: 'Initech', tier: 'silo', email: 'peter@initech.test' },
];
export const DEMO_PASSWORD = 'demo-password-1';

/** Idempotent: onboards the three demo tenants (one per tier) and a user each, through the admin service. */
export async function seedDemo(app: INestApplication): Promise<void> {
  const admin = app.get(TenantAdminService);
  const db = app.get<DataSource>(CONTROL_DATA_SOURCE);
  for (const demo of DEMO_TENANTS) {
    let tenant = await db.getRepository(TenantEntity).findOneBy({ slug: demo.slug });
    if (!tenant) {
      const created = await admin.create({ slug: demo.slug, name: demo.name, tier: demo.tier });
      tenant = await db.getRepository(TenantEntity).findOneByOrFail({ id: created.id });
    }
    await admin.addUser(tenant.id, { email: demo.email, password: DEMO_PASSWORD, role: 'owner' }).catch((err: { code?: string }) => {
      if (err.code !== 'membership_exists') throw err;
    });
  }
}

export async function printDemoHelp(app: INestApplication, port: number): Promise<void> {
  const adminToken = await app.get(JwtService).signPlatformToken('demo-operator', 12 * 3600);
  const acme = await app.get<DataSource>(CONTROL_DATA_SOURCE).getRepository(TenantEntity).findOneBy({ slug: 'acme' });
  const base = `http://127.0.0.1:${port}`;
  const lines = [
    '',
    `Strata API on ${base} with demo tenants: ${DEMO_TENANTS.map((t) => `${t.slug} (${t.tier})`).join(', ')}.`,
    `Demo users: ${DEMO_TENANTS.map((t) => t.email).join(', ')} — password ${DEMO_PASSWORD}`,
    '',
    '# log in to acme (pool) and use its token',
    `TOKEN=$(curl -s -X POST ${base}/t/acme/auth/login -H 'content-type: application/json' \\`,
    `  -d '{"email":"ada@acme.test","password":"${DEMO_PASSWORD}"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`,
    `curl -s -X POST ${base}/t/acme/projects -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"name":"Launch"}'`,
    `curl -s ${base}/t/acme/projects -H "authorization: Bearer $TOKEN"`,
    `curl -s -X POST ${base}/invoices -H 'X-Tenant: acme' -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"number":"INV-1","amount":1999,"currency":"EUR"}'`,
    '# files: stored under .data/files/{tenantId}/ (FILES_DRIVER=s3 for S3)',
    `curl -s -X POST ${base}/t/acme/files -H "authorization: Bearer $TOKEN" -F 'file=@README.md;type=text/markdown'`,
    `curl -s ${base}/t/acme/files -H "authorization: Bearer $TOKEN"`,
    '# webhooks: invoices created after this are POSTed, signed, to the URL (public addresses only unless WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true)',
    `curl -s -X POST ${base}/t/acme/webhooks -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"url":"https://example.com/hooks/strata"}'`,
    '# the same token on another tenant is a 404',
    `curl -s ${base}/t/globex/projects -H "authorization: Bearer $TOKEN"`,
    '# platform operator (token valid 12h, signed with AUTH_JWT_SECRET)',
    `ADMIN=${adminToken}`,
    `curl -s ${base}/admin/tenants -H "authorization: Bearer $ADMIN"`,
    '# move acme online into its own database (pool → silo) while it keeps working, then follow the move',
    '# (the API runs the move itself; `npm run tenants -- move acme --to silo --wait` does the same with a progress bar)',
    `curl -s -X POST ${base}/admin/tenants/${acme?.id}/moves -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' -d '{"toTier":"silo"}'`,
    `curl -s ${base}/admin/tenants/${acme?.id}/moves -H "authorization: Bearer $ADMIN"`,
    `curl -s ${base}/health/ready`,
    '',
  ];
  console.log(lines.join('\n'));
}
