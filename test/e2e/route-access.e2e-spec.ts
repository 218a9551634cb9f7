import { Reflector } from '@nestjs/core';
import { routeHandlers } from '#strata/api-docs';
import { ROUTE_ACCESS, ROUTE_ROLE, TENANT_ROLES, type RouteAccess, type TenantRole } from '#strata/auth';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

/**
 * Who may call each tenant route: the role matrix, stated once. A route missing here, or declared
 * otherwise in code, fails this file; so does a route of the app with no access declaration at all.
 */
const ROLE_MATRIX: Record<string, TenantRole> = {
  'GET /projects': 'member',
  'POST /projects': 'member',
  'GET /projects/:id': 'member',
  'PATCH /projects/:id': 'member',
  'DELETE /projects/:id': 'admin',
  'GET /projects/:id/tasks': 'member',
  'POST /projects/:id/tasks': 'member',
  'GET /tasks/:id': 'member',
  'PATCH /tasks/:id': 'member',
  'DELETE /tasks/:id': 'admin',
  'GET /invoices': 'member',
  'POST /invoices': 'member',
  'GET /invoices/:id': 'member',
  'PATCH /invoices/:id': 'member',
  'POST /invoices/:id/void': 'member',
  'GET /files': 'member',
  'POST /files': 'member',
  'GET /files/:id': 'member',
  'GET /files/:id/content': 'member',
  'GET /files/:id/url': 'member',
  'DELETE /files/:id': 'admin',
  'POST /webhooks': 'admin',
  'GET /webhooks': 'admin',
  'GET /webhooks/:id': 'admin',
  'DELETE /webhooks/:id': 'admin',
  'GET /webhooks/:id/deliveries': 'admin',
  'GET /webhooks/deliveries': 'admin',
  'PATCH /webhooks/:id': 'admin',
  'POST /webhooks/:id/rotate-secret': 'admin',
  'POST /webhooks/:id/ping': 'admin',
  'POST /webhooks/:id/deliveries/:deliveryId/redeliver': 'admin',
  'GET /usage': 'member',
  'GET /settings': 'member',
  'PATCH /settings': 'owner',
  'GET /auth/me': 'member',
  'POST /auth/password': 'member',
  'GET /members': 'admin',
  'POST /members/invitations': 'admin',
  'GET /members/invitations': 'admin',
  'DELETE /members/invitations/:id': 'admin',
  'PATCH /members/:userId': 'admin',
  'DELETE /members/:userId': 'admin',
  'POST /export': 'owner',
  'GET /export': 'owner',
  'GET /export/:id': 'owner',
  'GET /export/:id/archive': 'owner',
  'GET /audit': 'owner',
};

interface DeclaredRoute {
  name: string;
  access: RouteAccess | undefined;
  role: TenantRole | undefined;
}

/** Every route handler the app registered (Nest's discovery, as the OpenAPI document enumerates them), with its access declaration. */
function declaredRoutes(t: TestApp): DeclaredRoute[] {
  const reflector = t.app.get(Reflector);
  return routeHandlers(t.app).map(({ name, handler, controller }) => ({
    name,
    access: reflector.getAllAndOverride<RouteAccess | undefined>(ROUTE_ACCESS, [handler as never, controller as never]),
    role: reflector.getAllAndOverride<TenantRole | undefined>(ROUTE_ROLE, [handler as never, controller as never]),
  }));
}

describe('route access: every route declares who may call it, and roles are enforced', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  const tokens = {} as Record<TenantRole, string>;

  beforeAll(async () => {
    t = await startTestApp();
    acme = await t.onboard('acme', 'pool');
    tokens.owner = acme.token;
    for (const role of ['admin', 'member'] as const) {
      const email = `${role}@${acme.slug}.test`;
      const password = 'correct-horse-battery';
      await t.http().post(`/admin/tenants/${acme.id}/users`).set('authorization', `Bearer ${t.adminToken}`).send({ email, password, role }).expect(201);
      tokens[role] = (await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email, password }).expect(200)).body.access_token;
    }
  });
  afterAll(() => t?.close());

  it('finds the routes it is about (the enumeration itself works)', () => {
    const names = declaredRoutes(t).map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['GET /projects', 'DELETE /projects/:id', 'POST /admin/tenants', 'GET /health/ready', 'POST /auth/login']));
  });

  it('has an access declaration on every registered route: public, tenant-anonymous, platform admin, or a tenant role', () => {
    const undeclared = declaredRoutes(t).filter((r) => !r.access || (r.access === 'tenant' && !r.role));
    expect(undeclared.map((r) => r.name)).toEqual([]);
  });

  it('declares exactly the role matrix on every tenant route, and the matrix names no route that is gone', () => {
    const tenantRoutes = declaredRoutes(t).filter((r) => r.access === 'tenant');
    expect(Object.fromEntries(tenantRoutes.map((r) => [r.name, r.role]))).toEqual(ROLE_MATRIX);
  });

  const cases = Object.entries(ROLE_MATRIX).flatMap(([route, required]) => TENANT_ROLES.map((role) => [route, role, required] as const));
  it.each(cases)('%s as %s (needs %s): refused with 403 forbidden_role exactly when the role is below it', async (route, role, required) => {
    const [method, template] = route.split(' ');
    const path = template.replace(/:\w+/g, '00000000-0000-4000-8000-000000000000');
    const res = await t
      .http()
      [method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete'](path)
      .set('X-Tenant', acme.slug)
      .set('authorization', `Bearer ${tokens[role]}`)
      .send(method === 'GET' || method === 'DELETE' ? undefined : {});
    const allowed = TENANT_ROLES.indexOf(role) >= TENANT_ROLES.indexOf(required);
    if (allowed) {
      expect(res.body?.error).not.toBe('forbidden_role');
    } else {
      expect([res.status, res.body.error]).toEqual([403, 'forbidden_role']);
      expect(res.body.message).toContain(required);
    }
  });
});
