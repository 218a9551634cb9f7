import type { Request } from 'express';
import type { TenancyErrorCode } from './tenancy.errors';

export const SLUG_RULE = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
const PATH_PREFIX = /^\/t\/([^/?#]+)(?=[/?#]|$)/;

export type WireSource = 'subdomain' | 'path' | 'header';

export interface WireClaim {
  slug: string;
  source: WireSource;
}

export class WireTenantError extends Error {
  constructor(readonly code: Extract<TenancyErrorCode, 'tenant_required' | 'tenant_ambiguous' | 'tenant_not_found'>, message: string) {
    super(message);
  }
}

interface RequestWithPrefix extends Request {
  strataPathTenant?: string;
}

/**
 * Express middleware, mounted before Nest's router: `/t/{slug}/projects` is served by the
 * `/projects` route, with the slug remembered as the path claim.
 */
export function tenantPathPrefixMiddleware(req: RequestWithPrefix, _res: unknown, next: () => void): void {
  const m = PATH_PREFIX.exec(req.url);
  if (m) {
    req.strataPathTenant = decodeSlug(m[1]);
    // `/t/acme?x=1` and `/t/acme` route as `/?x=1` and `/`: a URL must start with a slash, or
    // Express answers with its own HTML 404 before Nest (and the JSON error shape) sees it.
    const rest = req.url.slice(m[0].length);
    req.url = rest.startsWith('/') ? rest : `/${rest}`;
  }
  next();
}

// A claim that is not valid percent-encoding (`/t/%`, `/t/%E0%A4%A`) can name no tenant: it becomes a
// slug no rule accepts, so the guard answers the JSON 404 of an unknown tenant instead of a URIError 500.
const UNDECODABLE = '%';
function decodeSlug(raw: string): string {
  try {
    return decodeURIComponent(raw).toLowerCase();
  } catch {
    return UNDECODABLE;
  }
}

/**
 * The wire says which tenant a request is for (the token later proves whether the caller belongs).
 * Several sources may be present; they must agree.
 */
export function resolveWireTenant(req: RequestWithPrefix, baseDomain: string | undefined): WireClaim {
  const claims: WireClaim[] = [];
  if (baseDomain) {
    const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? '')
      .split(',')[0]
      .trim()
      .toLowerCase()
      .replace(/:\d+$/, '');
    const suffix = `.${baseDomain}`;
    if (host.endsWith(suffix)) {
      const sub = host.slice(0, -suffix.length);
      if (sub && !sub.includes('.')) claims.push({ slug: sub, source: 'subdomain' });
    }
  }
  if (req.strataPathTenant) claims.push({ slug: req.strataPathTenant, source: 'path' });
  const header = req.headers['x-tenant'];
  if (typeof header === 'string' && header.trim()) claims.push({ slug: header.trim().toLowerCase(), source: 'header' });

  if (claims.length === 0) {
    throw new WireTenantError('tenant_required', 'name the tenant by subdomain, /t/{slug}/ path prefix or X-Tenant header');
  }
  const slug = claims[0].slug;
  if (claims.some((c) => c.slug !== slug)) {
    throw new WireTenantError('tenant_ambiguous', 'the request names more than one tenant');
  }
  // A malformed slug can name no tenant: same answer as an unknown one.
  if (!SLUG_RULE.test(slug)) throw new WireTenantError('tenant_not_found', 'tenant not found');
  return claims[0];
}
