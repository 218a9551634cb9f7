import { FOREIGN_PROBED_ROUTES } from '../support/cross-tenant-routes';
import { registeredRoutes as routesOf } from '../support/route-catalog';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * The cross-tenant guarantee, kept complete by construction: every route the app registers that
 * takes an id and serves a tenant must be probed with foreign ids on every tier pair. The list comes
 * from Express's router at runtime, so a new route fails CI until its row is added to
 * test/support/cross-tenant-routes.ts (and thereby probed by its spec).
 */
describe('cross-tenant route coverage', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  const registeredRoutes = () => routesOf(t.app);

  // Operators', signup's (public: its id is a new tenant's, not a tenant-scoped row) and infrastructure
  // routes take ids of no tenant, or none at all.
  const tenantRouteWithId = (name: string) => /\/:[A-Za-z]/.test(name) && !/^\w+ \/(admin|health|metrics|bench|signup)\b/.test(name);

  it('finds the routes it is about (the enumeration itself works)', () => {
    const all = registeredRoutes();
    expect(all).toEqual(expect.arrayContaining(['GET /projects/:id', 'POST /projects', 'GET /admin/moves/:id']));
  });

  it('probes every tenant route that takes an id with foreign ids, and lists no route that no longer exists', () => {
    const withIds = registeredRoutes().filter(tenantRouteWithId).sort();
    expect(withIds.filter((r) => !FOREIGN_PROBED_ROUTES.includes(r))).toEqual([]);
    expect(FOREIGN_PROBED_ROUTES.filter((r) => !withIds.includes(r))).toEqual([]);
  });
});
