import { Controller, Get, Headers, Param, Query } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { badRequest, notFound, UuidPipe } from '#strata/common';
import { PublicRoute } from '#strata/auth';
import { TenantRegistry } from '#strata/control-plane';
import { TenantContext, placementOf } from '#strata/tenancy/platform';
import { ProjectsService } from '#strata/projects';
import { InvoicesService, ListInvoicesQuery } from '#strata/invoices';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * BENCH ONLY, diagnostic (`--breakdown`): the tenant routes' services — tenant transaction,
 * CLS tenant, RLS — without the auth guard (no wire tenant, no JWT, no membership). The tenant is
 * named by id in `x-bench-tenant-id` and placed from the (cached) registry, like the guard does.
 * Comparing baseline → pool-noauth → pool splits the overhead into "tenant transaction" and "auth".
 */
@Controller('bench/tenant-tx')
@PublicRoute()
export class TenantTxController {
  private projectsService?: ProjectsService;
  private invoicesService?: InvoicesService;

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly registry: TenantRegistry,
    private readonly context: TenantContext,
  ) {}

  @Get('projects/:id')
  async project(@Headers('x-bench-tenant-id') tenantHeader: string | undefined, @Param('id', UuidPipe) id: string) {
    const service = this.projectsService ?? (this.projectsService = this.resolve(ProjectsService));
    return this.asTenant(tenantHeader, () => service.get(id));
  }

  @Get('invoices')
  async invoices(@Headers('x-bench-tenant-id') tenantHeader: string | undefined, @Query() query: ListInvoicesQuery) {
    const service = this.invoicesService ?? (this.invoicesService = this.resolve(InvoicesService));
    return this.asTenant(tenantHeader, () => service.list(query.limit, query.cursor));
  }

  /** The domain modules' own service instances, wherever they are declared. */
  private resolve<T>(type: new (...args: never[]) => T): T {
    const found = this.moduleRef.get<T, T | undefined>(type, { strict: false });
    if (!found) throw new Error(`${type.name} is not registered in the app`);
    return found;
  }

  private async asTenant<T>(header: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (!header || !UUID.test(header)) throw badRequest('bench_tenant_required', 'x-bench-tenant-id must be a tenant UUID');
    const tenant = await this.registry.findById(header);
    if (!tenant || tenant.status !== 'active') throw notFound('tenant_not_found', 'tenant not found');
    return this.context.run({ tenant: placementOf(tenant) }, fn);
  }
}
