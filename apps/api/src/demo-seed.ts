import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { TenantAdminService } from '#strata/admin';
import { CONTROL_DATA_SOURCE, TenantEntity, type Tier } from '#strata/control-plane';
import { JwtService } from '#strata/auth';
import type { StrataConfig } from '#strata/common';

export const DEMO_TENANTS: Array<{ slug: string; name: string; tier: Tier; plan: string; email: string }> = [
  { slug: 'acme', name: 'Acme Corp', tier: 'pool', plan: 'free', email: 'ada@acme.test' },
  { slug: 'globex', name: 'Globex', tier: 'bridge', plan: 'standard', email: 'hank@globex.test' },
  { slug: 'initech', name: 'Initech', tier: 'silo', plan: 'enterprise', email: 'peter@initech.test' },
];
export const DEMO_PASSWORD = 'demo-password-1';

/** Idempotent: onboards the three demo tenants (one per tier) and a user each, through the admin service. */
export async function seedDemo(app: INestApplication): Promise<void> {
  const admin = app.get(TenantAdminService);
  const db = app.get<DataSource>(CONTROL_DATA_SOURCE);
  for (const demo of DEMO_TENANTS) {
    let tenant = await db.getRepository(TenantEntity).findOneBy({ slug: demo.slug });
    if (!tenant) {
      const created = await admin.create({ slug: demo.slug, name: demo.name, tier: demo.tier, plan: demo.plan });
      tenant = await db.getRepository(TenantEntity).findOneByOrFail({ id: created.id });
    }
    await admin.addUser(tenant.id, { email: demo.email, password: DEMO_PASSWORD, role: 'owner' }).catch((err: { code?: string }) => {
      if (err.code !== 'membership_exists') throw err;
    });
  }
}

/** CORS origins of the demo (npm start on the embedded default) when CORS_ORIGINS is unset. */
export const DEMO_CORS_ORIGINS = 'http://localhost:5173,http://127.0.0.1:5173';

/**
 * The URL the banner's commands use for a server bound to `address`: a wildcard address (0.0.0.0,
 * ::) is reached on loopback, a specific one as it is.
 */
export function demoBaseUrl(address: AddressInfo | string | null): string {
  if (!address || typeof address === 'string') return 'http://127.0.0.1:3000';
  const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

export interface DemoHelpInput {
  base: string;
  adminToken: string;
  acmeId: string | undefined;
  corsOrigins: readonly string[];
  openapiEnabled: boolean;
  signupEnabled: boolean;
}

/**
 * The banner: ready-to-paste commands for the demo tenants. Every curl that prints an answer adds a
 * newline after it (`-w '\n'`): the API's JSON has none, and the next prompt would start on its line.
 */
export function demoHelp({ base, adminToken, acmeId, corsOrigins, openapiEnabled, signupEnabled }: DemoHelpInput): string {
  const curl = (args: string) => `curl -s -w '\\n' ${args}`;
  const lines = [
    '',
    `Strata API on ${base} with demo tenants: ${DEMO_TENANTS.map((t) => `${t.slug} (${t.tier}, plan ${t.plan})`).join(', ')}.`,
    `Demo users: ${DEMO_TENANTS.map((t) => t.email).join(', ')} — password ${DEMO_PASSWORD}`,
    openapiEnabled
      ? `API docs: ${base}/docs (Swagger UI; the OpenAPI 3.1 document is ${base}/openapi.json: npx openapi-typescript ${base}/openapi.json -o api.d.ts)`
      : 'API docs: off (OPENAPI_ENABLED=false)',
    '',
    '# log in to acme (pool) and use its token',
    `TOKEN=$(curl -s -X POST ${base}/t/acme/auth/login -H 'content-type: application/json' \\`,
    `  -d '{"email":"ada@acme.test","password":"${DEMO_PASSWORD}"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`,
    curl(`-X POST ${base}/t/acme/projects -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"name":"Launch"}'`),
    curl(`${base}/t/acme/projects -H "authorization: Bearer $TOKEN"`),
    curl(`-X POST ${base}/invoices -H 'X-Tenant: acme' -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"number":"INV-1","amount":1999,"currency":"EUR"}'`),
    '# files: stored under .data/files/{tenantId}/ (FILES_DRIVER=s3 for S3)',
    `FILE=$(curl -s -X POST ${base}/t/acme/files -H "authorization: Bearer $TOKEN" -F 'file=@README.md;type=text/markdown' | sed -E 's/.*"id":"([^"]+)".*/\\1/')`,
    curl(`${base}/t/acme/files -H "authorization: Bearer $TOKEN"`),
    '# a download URL that needs no token (for <img src> or a link; valid FILES_URL_TTL_SECONDS, Range and If-None-Match work on it)',
    curl(`${base}/t/acme/files/$FILE/url -H "authorization: Bearer $TOKEN"`),
    '# webhooks: invoices created after this are POSTed, signed, to the URL (public addresses only unless WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true)',
    curl(`-X POST ${base}/t/acme/webhooks -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"url":"https://example.com/hooks/strata"}'`),
    '# data portability: an owner exports the tenant (JSON Lines per table, files, manifest with checksums), then downloads the .tar.gz',
    `EXPORT=$(curl -s -X POST ${base}/t/acme/export -H "authorization: Bearer $TOKEN" | sed -E 's/.*"id":"([^"]+)".*/\\1/')`,
    curl(`${base}/t/acme/export/$EXPORT -H "authorization: Bearer $TOKEN"`),
    curl(`-OJ ${base}/t/acme/export/$EXPORT/archive -H "authorization: Bearer $TOKEN"`),
    '# usage against the plan (acme is on `free`: a 4th project answers 402 plan_limit_reached), settings and feature flags',
    curl(`${base}/t/acme/usage -H "authorization: Bearer $TOKEN"`),
    curl(`-X PATCH ${base}/t/acme/settings -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"timezone":"Europe/Paris","currency":"EUR"}'`),
    '# the same token on another tenant is a 404',
    curl(`${base}/t/globex/projects -H "authorization: Bearer $TOKEN"`),
    '# platform operator (token valid 12h, signed with AUTH_JWT_SECRET)',
    `ADMIN=${adminToken}`,
    curl(`${base}/admin/tenants -H "authorization: Bearer $ADMIN"`),
    '# plans, and a plan change that every instance applies at once',
    curl(`${base}/admin/plans -H "authorization: Bearer $ADMIN"`),
    curl(`-X PATCH ${base}/admin/tenants/${acmeId}/plan -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' -d '{"plan":"standard"}'`),
    '# move acme online into its own database (pool → silo) while it keeps working, then follow the move',
    '# (the API runs the move itself; `npm run tenants -- move acme --to silo --wait` does the same with a progress bar)',
    curl(`-X POST ${base}/admin/tenants/${acmeId}/moves -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' -d '{"toTier":"silo"}'`),
    curl(`${base}/admin/tenants/${acmeId}/moves -H "authorization: Bearer $ADMIN"`),
    '# the audit log: who did what to acme (hash-chained; `npm run audit -- verify` checks the chain)',
    curl(`"${base}/admin/audit?tenantId=${acmeId}&limit=5" -H "authorization: Bearer $ADMIN"`),
    ...(signupEnabled
      ? [
          '# self-service signup (SIGNUP_ENABLED): a new pool tenant, its owner logs in at once (202 + a poll URL when it takes longer)',
          curl(`-X POST ${base}/signup -H 'content-type: application/json' -d '{"company":"Hooli","slug":"hooli","email":"gavin@hooli.test","password":"${DEMO_PASSWORD}"}'`),
        ]
      : []),
    curl(`${base}/health/ready`),
    `# browser apps may call this API from ${corsOrigins.length ? corsOrigins.join(', ') : '(no origin: set CORS_ORIGINS)'} (CORS_ORIGINS)`,
    `curl -s -i -X OPTIONS ${base}/t/acme/projects -H 'origin: ${corsOrigins[0] ?? 'http://localhost:5173'}' -H 'access-control-request-method: POST' -H 'access-control-request-headers: authorization,content-type'`,
    '',
  ];
  return `${lines.join('\n')}\n`;
}

/** Prints the banner for the API listening on `base` (see demoBaseUrl). */
export async function printDemoHelp(
  app: INestApplication,
  config: Pick<StrataConfig, 'corsOrigins' | 'openapiEnabled' | 'signupEnabled'>,
  base: string,
): Promise<void> {
  const adminToken = await app.get(JwtService).signPlatformToken('demo-operator', 12 * 3600);
  const acme = await app.get<DataSource>(CONTROL_DATA_SOURCE).getRepository(TenantEntity).findOneBy({ slug: 'acme' });
  process.stdout.write(demoHelp({ base, adminToken, acmeId: acme?.id, corsOrigins: config.corsOrigins, openapiEnabled: config.openapiEnabled, signupEnabled: config.signupEnabled }));
}
