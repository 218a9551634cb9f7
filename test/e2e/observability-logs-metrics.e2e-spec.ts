import { RequireRole } from '#strata/auth';
import { Controller, Get, Param } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { PinoLogger } from 'nestjs-pino';
import { MetricsService, setObservabilityDefaults } from '#strata/observability';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

type Line = Record<string, any>;

/** A tenant route that logs mid-request after an await, and one that fails with a 500. */
@Controller('obs-probe')
@RequireRole('member')
class ProbeController {
  constructor(private readonly log: PinoLogger) {}

  @Get('log/:n')
  async logs(@Param('n') n: string): Promise<{ n: string }> {
    await new Promise((r) => setTimeout(r, Math.random() * 15));
    this.log.info({ n }, 'probe work');
    return { n };
  }

  @Get('boom')
  boom(): never {
    throw new Error('probe failure');
  }
}

type Tenant = OnboardedTenant;

describe('observability: tenant-aware logs and /metrics', () => {
  const lines: Line[] = [];
  const sink = { write: (s: string) => void lines.push(JSON.parse(s)) };
  let t: TestApp;
  const http = () => t.http();
  let pool: Tenant;
  let bridge: Tenant;
  let silo: Tenant;

  const as = (who: Tenant, path: string, requestId = `rq-${randomUUID()}`) =>
    http().get(path).set('X-Tenant', who.slug).set('authorization', `Bearer ${who.token}`).set('X-Request-Id', requestId);

  const completed = (requestId: string) => lines.find((l) => l.requestId === requestId && l.res);

  beforeAll(async () => {
    // Process-wide defaults: AppModule's ObservabilityModule picks them up, so its lines land here.
    setObservabilityDefaults({ level: 'info', destination: sink });
    t = await startTestApp({}, { logger: ['fatal'], extra: { controllers: [ProbeController] } });
    pool = await t.onboard('obspool', 'pool');
    bridge = await t.onboard('obsbridge', 'bridge');
    silo = await t.onboard('obssilo', 'silo');
  });
  afterAll(() => t?.close());

  it('stamps a tenant request line with its tenant and request id, and never with credentials or emails', async () => {
    const requestId = `rq-${randomUUID()}`;
    const res = await as(pool, `/projects/${randomUUID()}`, requestId).expect(404);
    expect(res.headers['x-request-id']).toBe(requestId);
    const line = completed(requestId);
    expect(line).toMatchObject({ tenantId: pool.id, tenantSlug: pool.slug, tenantTier: 'pool', requestId });
    expect(line!.res.statusCode).toBe(404);
    // Headers are allowlisted: the bearer token and the wire tenant header are not on the line at all.
    expect(line!.req.headers.authorization).toBeUndefined();
    expect(line!.req.headers['x-tenant']).toBeUndefined();
    expect(line!.req.headers['x-request-id']).toBeUndefined();

    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const t of [pool, bridge, silo]) {
      expect(text).not.toContain(t.token);
      expect(text).not.toContain(t.email);
      expect(text).not.toContain(t.password);
      expect(text).not.toContain(t.name);
    }
  });

  it('a line logged inside the handler carries the tenant too', async () => {
    const requestId = `rq-${randomUUID()}`;
    await as(bridge, '/obs-probe/log/1', requestId).expect(200);
    const work = lines.find((l) => l.requestId === requestId && l.msg === 'probe work');
    expect(work).toMatchObject({ tenantId: bridge.id, tenantSlug: bridge.slug, tenantTier: 'bridge' });
  });

  it('a rejected request has its request id and no tenant', async () => {
    const requestId = `rq-${randomUUID()}`;
    await http().get('/projects').set('X-Tenant', pool.slug).set('X-Request-Id', requestId).expect(401);
    const line = completed(requestId);
    expect(line).toMatchObject({ requestId, level: 40 });
    expect(line!.tenantId).toBeUndefined();
  });

  it('under interleaved concurrent requests of several tenants, every line carries its own tenant', async () => {
    const tenants = [pool, bridge, silo];
    const sent: Array<{ requestId: string; tenant: Tenant }> = [];
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const tenant = tenants[i % tenants.length];
        const requestId = `rq-${randomUUID()}`;
        sent.push({ requestId, tenant });
        return as(tenant, `/obs-probe/log/${i}`, requestId).expect(200);
      }),
    );
    for (const { requestId, tenant } of sent) {
      const mine = lines.filter((l) => l.requestId === requestId);
      expect(mine.map((l) => l.msg).sort()).toEqual(['probe work', 'request completed']);
      for (const l of mine) expect([l.tenantId, l.tenantSlug, l.tenantTier]).toEqual([tenant.id, tenant.slug, tenant.tier]);
    }
    // And no line names one tenant's request with another tenant's id.
    const owner = new Map(sent.map((s) => [s.requestId, s.tenant.id]));
    for (const l of lines) if (owner.has(l.requestId) && l.tenantId !== undefined) expect(l.tenantId).toBe(owner.get(l.requestId));
  });

  describe('/metrics', () => {
    let text: string;
    const metricLines = (name: string) => text.split('\n').filter((l) => l.startsWith(name));

    beforeAll(async () => {
      const id = randomUUID();
      await as(pool, `/projects/${id}`).expect(404);
      await as(silo, '/projects').expect(200);
      await as(bridge, '/obs-probe/boom').expect(500);
      await http().get('/projects').set('X-Tenant', pool.slug).expect(401);
      await http().get(`/no-such-route/${id}`).expect(404);
      t.app.get(MetricsService).registerQueueDepth('invoices', async () => 7);
      t.app.get(MetricsService).registerQueueDepth('broken', async () => {
        throw new Error('redis down');
      });
      const res = await http().get('/metrics').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      text = res.text;
    });

    it('has the duration histogram by route pattern and tier, never a raw id or tenant id', () => {
      const buckets = metricLines('http_request_duration_seconds_count');
      expect(buckets).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/route="\/projects\/:id".*status="404".*tier="pool"/),
          expect.stringMatching(/route="\/projects".*status="200".*tier="silo"/),
          expect.stringMatching(/route="\/obs-probe\/boom".*status="500".*tier="bridge"/),
          // Rejected by the guard: still measured, with no tier.
          expect.stringMatching(/route="\/projects".*status="401".*tier="none"/),
          expect.stringMatching(/route="unmatched".*status="404".*tier="none"/),
        ]),
      );
      const histogram = metricLines('http_request_duration_seconds').join('\n');
      expect(histogram).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/); // no raw ids, no tenant ids
    });

    it('counts requests per tenant and 5xx answers as that tenant\'s errors', () => {
      const count = (name: string, t: Tenant) =>
        Number(metricLines(`${name}{tenant_id="${t.id}"}`)[0]?.split(' ').pop() ?? 0);
      expect(count('strata_tenant_requests_total', pool)).toBeGreaterThanOrEqual(20);
      expect(count('strata_tenant_requests_total', silo)).toBeGreaterThanOrEqual(21);
      expect(count('strata_tenant_errors_total', bridge)).toBe(1);
      expect(count('strata_tenant_errors_total', pool)).toBe(0); // a 404 is not the tenant's error
    });

    it('has pool gauges per server, the silo cache size and registered queue depths', () => {
      expect(metricLines('strata_db_pool_connections_total{server=').length).toBeGreaterThan(0);
      expect(metricLines('strata_db_pool_connections_idle{server=').length).toBeGreaterThan(0);
      expect(metricLines('strata_db_pool_connections_in_use{server=').length).toBeGreaterThan(0);
      expect(metricLines('strata_db_pool_waiting{server=').length).toBeGreaterThan(0);
      expect(Number(metricLines('strata_silo_datasources ')[0]?.split(' ')[1])).toBeGreaterThanOrEqual(1);
      expect(metricLines('strata_queue_depth{queue="invoices"}')[0]).toBe('strata_queue_depth{queue="invoices"} 7');
      expect(metricLines('strata_queue_depth{queue="broken"}')).toEqual([]);
      expect(text).toContain('process_cpu_user_seconds_total');
    });

    it('an error logged through Nest\'s Logger (HttpErrorFilter) carries the tenant', () => {
      const fault = lines.find((l) => l.context === 'HttpError' && /probe failure/.test(String(l.msg)));
      expect(fault).toMatchObject({ level: 50, tenantId: bridge.id, tenantSlug: bridge.slug, tenantTier: 'bridge' });
    });

    it('is not itself logged per scrape', () => {
      expect(lines.some((l) => l.req?.url === '/metrics')).toBe(false);
    });
  });
});
