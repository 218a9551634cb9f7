import type { Request } from 'express';
import { resolveWireTenant, tenantPathPrefixMiddleware, WireTenantError } from './wire-tenant.resolver';

function req(over: { url?: string; host?: string; header?: string }): Request {
  const r = { url: over.url ?? '/projects', headers: { host: over.host ?? 'api.local' } as Record<string, string> } as unknown as Request;
  if (over.header) (r.headers as Record<string, string>)['x-tenant'] = over.header;
  tenantPathPrefixMiddleware(r as never, undefined, () => undefined);
  return r;
}

describe('wire tenant resolution', () => {
  it('reads the slug from a subdomain of the base domain', () => {
    expect(resolveWireTenant(req({ host: 'acme.example.test:3000' }), 'example.test')).toEqual({ slug: 'acme', source: 'subdomain' });
  });

  it('ignores subdomains when no base domain is configured', () => {
    expect(() => resolveWireTenant(req({ host: 'acme.example.test' }), undefined)).toThrow(WireTenantError);
  });

  it('ignores a nested subdomain', () => {
    expect(() => resolveWireTenant(req({ host: 'a.acme.example.test' }), 'example.test')).toThrow(/name the tenant/);
  });

  it('strips the /t/{slug} prefix so the plain route serves it', () => {
    const r = req({ url: '/t/acme/projects/123?x=1' });
    expect(r.url).toBe('/projects/123?x=1');
    expect(resolveWireTenant(r, undefined)).toEqual({ slug: 'acme', source: 'path' });
  });

  it('keeps a query string after a bare /t/{slug} routable: it becomes /?…, never a URL without its slash', () => {
    expect(req({ url: '/t/acme?limit=1' }).url).toBe('/?limit=1');
    expect(req({ url: '/t/acme' }).url).toBe('/');
  });

  it.each(['/t/%/projects', '/t/%E0%A4%A/projects', '/t/%ZZ'])('turns an undecodable claim (%s) into an unknown tenant, not a URIError', (url) => {
    const r = req({ url });
    expect(() => resolveWireTenant(r, undefined)).toThrow(expect.objectContaining({ code: 'tenant_not_found' }));
  });

  it('does not treat /tenants or /t alone as a prefix', () => {
    expect(req({ url: '/tenants/acme' }).url).toBe('/tenants/acme');
    expect(req({ url: '/t' }).url).toBe('/t');
  });

  it('reads the X-Tenant header case-insensitively', () => {
    expect(resolveWireTenant(req({ header: ' ACME ' }), undefined)).toEqual({ slug: 'acme', source: 'header' });
  });

  it('accepts several sources that agree', () => {
    expect(resolveWireTenant(req({ url: '/t/acme/x', header: 'acme', host: 'acme.example.test' }), 'example.test').slug).toBe('acme');
  });

  it('refuses sources that disagree with tenant_ambiguous', () => {
    try {
      resolveWireTenant(req({ url: '/t/acme/x', header: 'globex' }), undefined);
      throw new Error('expected a WireTenantError');
    } catch (err) {
      expect((err as WireTenantError).code).toBe('tenant_ambiguous');
    }
  });

  it('answers tenant_required when nothing names a tenant', () => {
    expect(() => resolveWireTenant(req({}), 'example.test')).toThrow(expect.objectContaining({ code: 'tenant_required' }));
  });

  it('treats a slug that breaks the slug rule as an unknown tenant', () => {
    expect(() => resolveWireTenant(req({ header: "acme'; drop table x;--" }), undefined)).toThrow(
      expect.objectContaining({ code: 'tenant_not_found' }),
    );
  });
});
