import { FOREIGN_PROBED_ROUTES } from '../support/cross-tenant-routes';
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

  /** "METHOD /path" of every route Express would serve, from its router stack. */
  function registeredRoutes(): string[] {
    const express = t.app.getHttpAdapter().getInstance() as { router?: { stack: RouterLayer[] }; _router?: { stack: RouterLayer[] } };
    const stack = (express.router ?? express._router)?.stack ?? [];
    return stack.flatMap((layer) =>
      layer.route ? Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path}`) : [],
    );
  }

  // Operators' and infrastructure routes take ids of no tenant (platform admin), or none at all.
  const tenantRouteWithId = (name: string) => /\/:[A-Za-z]/.test(name) && !/^\w+ \/(admin|health|metrics|bench)\b/.test(name);

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

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
}
