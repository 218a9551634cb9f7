import { RequireRole } from '#strata/auth';
import { Controller, Get } from '@nestjs/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { deferred, waitFor, type Deferred } from '../support/tenancy-fixture';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

// Held units: each keeps its connection until the test lets go.
let gate: Deferred = deferred();
let holding = 0;

@Controller('capacity-probe')
@RequireRole('member')
class HoldController {
  constructor(private readonly connections: TenantConnectionManager) {}

  @Get('hold')
  async hold(): Promise<{ held: true }> {
    await this.connections.transaction(async (em) => {
      await em.query('SELECT 1');
      holding++;
      await gate.promise;
    });
    holding--;
    return { held: true };
  }
}

describe('a full connection budget on the HTTP edge', () => {
  let t: TestApp;
  let pool: OnboardedTenant;
  let silo: OnboardedTenant;

  beforeAll(async () => {
    // Two connections to the one server for everything: the shared pool may take both.
    t = await startTestApp(
      { dbServerMaxConnections: 2, dbServerAcquireTimeoutMs: 300, dataPoolMax: 2, siloPoolMax: 1, siloMaxConnections: 2 },
      { logger: ['fatal'], extra: { controllers: [HoldController] } },
    );
    pool = await t.onboard('capedge', 'pool');
    silo = await t.onboard('capsilo', 'silo');
  });
  afterAll(async () => {
    gate.resolve();
    await t?.close();
  });

  const as = (who: OnboardedTenant, path: string) => t.http().get(path).set('X-Tenant', who.slug).set('authorization', `Bearer ${who.token}`);

  it('answers 503 tenant_capacity with Retry-After, never a 500, while the server budget is held, and serves again after', async () => {
    // Onboarding opened no silo data connection: two held pool units fill the server's budget.
    gate = deferred();
    const held = [as(pool, '/capacity-probe/hold'), as(pool, '/capacity-probe/hold')].map((r) => r.then((res) => res.status));
    await waitFor(() => holding, (n) => n === 2, 5000, 10);
    const res = await as(silo, '/projects');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ statusCode: 503, error: 'tenant_capacity' });
    expect(res.headers['retry-after']).toBe('1');
    gate.resolve();
    expect(await Promise.all(held)).toEqual([200, 200]);
    // Both shared connections now idle: one is closed to admit the silo tenant's.
    await as(silo, '/projects').expect(200);
  });
});
