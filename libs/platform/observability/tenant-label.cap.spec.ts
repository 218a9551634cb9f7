import { randomUUID } from 'node:crypto';
import type { TenantScope } from '#strata/tenancy/platform';
import { MetricsService } from './metrics.service';
import { OTHER_TENANTS, TenantLabelCap } from './tenant-label.cap';

const scopeOf = (id: string) => ({ tenant: { id, tier: 'pool' } }) as unknown as TenantScope;

function seriesOf(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{tenant_id="([^"]+)"\\} (\\d+)$`).exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

describe('per-tenant metric cardinality (METRICS_TENANT_LABELS_MAX)', () => {
  it('keeps 10,000 tenants to the cap plus "other" in a scrape, and loses no request from the total', async () => {
    const metrics = new MetricsService(undefined, undefined, { defaultMetrics: false }, undefined, { metricsTenantLabelsMax: 50 } as never);
    const tenants = Array.from({ length: 10_000 }, () => randomUUID());
    for (const id of tenants) metrics.observeHttp({ route: '/projects', method: 'GET', status: 200, seconds: 0.001, scope: scopeOf(id) });
    const series = seriesOf(await metrics.metrics(), 'strata_tenant_requests_total');
    expect(series.size).toBe(51);
    expect(series.get(OTHER_TENANTS)).toBe(10_000 - 50);
    expect([...series.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
    metrics.onModuleDestroy();
  });

  it('gives a busy tenant counted as "other" a series of its own at the next scrape, in place of the quietest one', async () => {
    const metrics = new MetricsService(undefined, undefined, { defaultMetrics: false }, undefined, { metricsTenantLabelsMax: 3 } as never);
    const [a, b, c, busy] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const hit = (id: string, n: number, status = 200) => {
      for (let i = 0; i < n; i++) metrics.observeHttp({ route: '/p', method: 'GET', status, seconds: 0, scope: scopeOf(id) });
    };
    hit(a, 5);
    hit(b, 1, 503);
    hit(c, 5);
    hit(busy, 20);
    // The scrape rebalances first: b was the quietest, so it gave way, and both its series went with it.
    let text = await metrics.metrics();
    expect([...seriesOf(text, 'strata_tenant_requests_total').keys()].sort()).toEqual([a, c, OTHER_TENANTS].sort());
    expect(seriesOf(text, 'strata_tenant_errors_total').has(b)).toBe(false);
    hit(busy, 1);
    text = await metrics.metrics();
    const requests = seriesOf(text, 'strata_tenant_requests_total');
    expect([...requests.keys()].sort()).toEqual([a, c, busy, OTHER_TENANTS].sort());
    expect(requests.get(busy)).toBe(1);
    metrics.onModuleDestroy();
  });

  it('bounds what it remembers about tenants without a series', () => {
    const cap = new TenantLabelCap(10);
    for (let i = 0; i < 100_000; i++) cap.labelOf(`t${i}`);
    expect(cap.size).toBe(10);
    expect((cap as unknown as { candidates: Map<string, number> }).candidates.size).toBeLessThanOrEqual(40);
  });
});
