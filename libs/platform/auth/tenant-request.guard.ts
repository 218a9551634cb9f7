import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { ClsService } from 'nestjs-cls';
import { ApiException, STRATA_CONFIG, badRequest, forbidden, notFound, unauthorized, type StrataConfig } from '#strata/common';
import { TenantRegistry } from '#strata/control-plane';
import { placementOf, resolveWireTenant, TenantContext, WireTenantError } from '#strata/tenancy/platform';
import { impersonationForbidden, tenantMaintenance, tenantProvisioning } from './auth.errors';
import { ImpersonationsService, type LiveImpersonation } from './impersonations.service';
import { JwtService } from './jwt.service';
import {
  PLATFORM_OPERATOR,
  REFUSED_UNDER_IMPERSONATION,
  ROUTE_ACCESS,
  ROUTE_ROLE,
  roleSatisfies,
  SUSPENDED_TENANT_HANDLED,
  type RouteAccess,
  type TenantRole,
} from './route-access.decorators';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const tenantNotFound = () => notFound('tenant_not_found', 'tenant not found');

export function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  return m?.[1];
}

/**
 * The request edge. The wire (subdomain, /t/{slug}, X-Tenant) claims a tenant; the verified token
 * and the membership prove the caller belongs there. Unknown tenant, a token for another tenant
 * and a missing membership all answer the same 404, so a caller learns nothing about tenants it
 * does not belong to. Only then is the tenant bound into the request's CLS context.
 */
@Injectable()
export class TenantRequestGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly jwt: JwtService,
    private readonly registry: TenantRegistry,
    private readonly context: TenantContext,
    private readonly cls: ClsService,
    private readonly impersonations: ImpersonationsService,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const access =
      this.reflector.getAllAndOverride<RouteAccess | undefined>(ROUTE_ACCESS, [ctx.getHandler(), ctx.getClass()]) ?? 'tenant';
    if (access === 'public') return true;
    const req = ctx.switchToHttp().getRequest<Request>();
    if (access === 'platform-admin') return this.platformAdmin(req);

    const slug = this.wireSlug(req);
    if (access === 'tenant-anonymous') {
      const tenant = await this.registry.findBySlug(slug);
      const handled = this.reflector.getAllAndOverride<boolean>(SUSPENDED_TENANT_HANDLED, [ctx.getHandler(), ctx.getClass()]);
      // Login to a tenant its onboarding has not finished: say so, the client retries (409 + Retry-After).
      if (tenant?.status === 'provisioning' && handled) throw tenantProvisioning();
      const suspendedHandled = tenant?.status === 'suspended' && handled;
      if (!tenant || (tenant.status !== 'active' && !suspendedHandled)) throw tenantNotFound();
      // Anonymous routes already tell a known slug from an unknown one (404), so this leaks nothing new.
      if (tenant.maintenanceSince) throw tenantMaintenance();
      this.context.bind({ tenant: placementOf(tenant), requestId: this.cls.getId() });
      return true;
    }

    const token = bearerToken(req);
    if (!token) throw unauthorized('unauthenticated', 'a bearer token is required');
    const claims = await this.jwt.verify(token);
    // Lower case at the edge: `sub` keys the membership cache, which invalidates by the lower-case id.
    const sub = typeof claims.sub === 'string' ? claims.sub.toLowerCase() : claims.sub;
    const tid = (claims as { tid?: unknown }).tid;
    if (typeof sub !== 'string' || !UUID.test(sub) || typeof tid !== 'string') throw tenantNotFound();

    const tenant = await this.registry.findBySlug(slug);
    if (!tenant || tenant.id !== tid) throw tenantNotFound();
    // An operator acting as the user (RFC 8693 `act`): checked against its row on every request, and
    // audited from here on, refusals included, with both identities.
    let impersonation: LiveImpersonation | undefined;
    if ((claims as { act?: unknown }).act !== undefined) {
      impersonation = await this.impersonations.requireLive(claims as { act?: unknown; imp?: unknown }, sub, tenant.id);
      this.auditOnClose(req, ctx.switchToHttp().getResponse<Response>(), impersonation, tenant.id, sub);
    }
    const role = await this.registry.membershipRole(sub, tenant.id);
    if (!role) throw tenantNotFound();
    // From here the caller is a proven member, so telling it the tenant's state leaks nothing.
    if (tenant.status === 'suspended') throw forbidden('tenant_suspended', 'this tenant is suspended');
    if (tenant.status !== 'active') throw tenantNotFound();
    if (tenant.maintenanceSince) throw tenantMaintenance();
    // Deny by default: a tenant route that declares no role is open to no one.
    const required = this.reflector.getAllAndOverride<TenantRole | undefined>(ROUTE_ROLE, [ctx.getHandler(), ctx.getClass()]);
    if (!required) throw new ApiException(403, 'forbidden_role', 'this route declares no tenant role, so no one may use it');
    if (!roleSatisfies(role, required)) throw new ApiException(403, 'forbidden_role', `this route needs the ${required} role (or higher); you are ${role}`);
    if (impersonation && this.reflector.getAllAndOverride<boolean>(REFUSED_UNDER_IMPERSONATION, [ctx.getHandler(), ctx.getClass()])) {
      throw impersonationForbidden();
    }

    this.context.bind({
      tenant: placementOf(tenant),
      requestId: this.cls.getId(),
      userId: sub,
      role,
      ...(impersonation ? { impersonatedBy: impersonation.operatorId, impersonationId: impersonation.id } : {}),
    });
    return true;
  }

  /** One `impersonation.request` entry when the answer is over (or the client left), with its status. */
  private auditOnClose(req: Request, res: Response, impersonation: LiveImpersonation, tenantId: string, userId: string): void {
    const requestId = this.cls.getId() ?? null;
    res.once('close', () => {
      // The route pattern, not the URL: ids in it are the request's, the query may hold anything.
      const route = req.route?.path ? `${req.baseUrl ?? ''}${String(req.route.path)}` : req.path;
      void this.impersonations.recordRequest({
        impersonation,
        tenantId,
        userId,
        requestId,
        method: req.method,
        route,
        status: res.statusCode,
        aborted: !res.writableFinished,
      });
    });
  }

  private wireSlug(req: Request): string {
    try {
      return resolveWireTenant(req, this.config.baseDomain).slug;
    } catch (err) {
      if (err instanceof WireTenantError) {
        if (err.code === 'tenant_not_found') throw tenantNotFound();
        throw badRequest(err.code, err.message);
      }
      throw err;
    }
  }

  private async platformAdmin(req: Request): Promise<boolean> {
    const token = bearerToken(req);
    if (!token) throw unauthorized('unauthenticated', 'a bearer token is required');
    const claims = await this.jwt.verify(token);
    const scope = (claims as { scope?: unknown }).scope;
    const scopes = typeof scope === 'string' ? scope.split(' ') : [];
    if (!scopes.includes('platform:admin')) {
      throw new ApiException(403, 'platform_admin_required', 'this route needs a platform:admin token');
    }
    (req as unknown as Record<symbol, unknown>)[PLATFORM_OPERATOR] = typeof claims.sub === 'string' && claims.sub ? claims.sub : 'unknown-operator';
    return true;
  }
}
