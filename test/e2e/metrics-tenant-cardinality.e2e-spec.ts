import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const LABELS_MAX = 4;

describe('/metrics with more tenants than METRICS_TENANT_LABELS_MAX', () => {
  let t: TestApp;
  const tenants: OnboardedTenant[] = [];

  beforeAll(async () => {
    t = await startTestApp({ metricsTenantLabelsMax: LABELS_MAX }, { logger: ['fatal'] });
    for (let i = 0; i < 12; i++) tenants.push(await t.onboard(`card${i}`, i % 3 === 2 ? 'bridge' : 'pool'));
  });
  afterAll(() => t?.close());

  const get = (who: OnboardedTenant) => t.http().get('/projects').set('X-Tenant', who.slug).set('authorization', `Bearer ${who.token}`).expect(200);
  const tenantSeries = (text: string, name: string) =>
    new Map(
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`))
        .map((l) => [/tenant_id="([^"]+)"/.exec(l)![1], Number(l.split(' ').pop())] as const),
    );

  it('has at most the cap of tenant series plus "other" after requests from 12 tenants', async () => {
    for (const who of tenants) for (let i = 0; i < 3; i++) await get(who);
    const res = await t.http().get('/metrics').expect(200);
    const series = tenantSeries(res.text, 'strata_tenant_requests_total');
    expect(series.size).toBeLessThanOrEqual(LABELS_MAX + 1);
    expect(series.has('other')).toBe(true);
    // At least the 8 tenants beyond the cap counted there, 3 requests each.
    expect(series.get('other')).toBeGreaterThanOrEqual((12 - LABELS_MAX) * 3);
    for (const line of res.text.split('\n').filter((l) => l.startsWith('strata_tenant_errors_total{'))) expect(line).toMatch(/tenant_id="([0-9a-f-]{36}|other)"/);
  });

  it('moves the busiest tenant onto a series of its own at the next scrape', async () => {
    const busy = tenants[tenants.length - 1];
    for (let i = 0; i < 30; i++) await get(busy);
    await t.http().get('/metrics').expect(200); // rebalances
    await get(busy);
    const res = await t.http().get('/metrics').expect(200);
    const series = tenantSeries(res.text, 'strata_tenant_requests_total');
    expect(series.has(busy.id)).toBe(true);
    expect(series.size).toBeLessThanOrEqual(LABELS_MAX + 1);
  });

  it('publishes connections per database server and tier, the server budget and the silo counters', async () => {
    const res = await t.http().get('/metrics').expect(200);
    expect(res.text).toMatch(/^strata_db_server_connections\{server="[^"]+:\d+",tier="shared",state="in_use"\} \d+$/m);
    expect(res.text).toMatch(/^strata_db_server_connections\{server="[^"]+:\d+",tier="shared",state="idle"\} \d+$/m);
    expect(res.text).toMatch(/^strata_db_server_waiting\{server="[^"]+:\d+",tier="shared"\} 0$/m);
    expect(res.text).toMatch(new RegExp(`^strata_db_server_connections_max\\{server="[^"]+:\\d+"\\} ${t.config.dbServerMaxConnections}$`, 'm'));
    expect(res.text).toContain('# TYPE strata_db_server_admission_wait_seconds histogram');
    expect(res.text).toMatch(/^strata_silo_datasource_creations_total \d+$/m);
    expect(res.text).toMatch(/^strata_silo_evictions_total\{reason="lru"\} 0$/m);
    expect(res.text).toMatch(/^strata_silo_connection_closes_total\{reason="room"\} 0$/m);
    expect(res.text).toMatch(/^strata_silo_connection_closes_total\{reason="idle"\} \d+$/m);
    expect(res.text).toMatch(/^strata_silo_reconnects_total \d+$/m);
  });
});
