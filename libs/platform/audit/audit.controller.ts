import { Controller, Get, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, type Page } from '#strata/common';
import { PlatformAdmin, RequireRole } from '#strata/auth';
import { TenantContext } from '#strata/tenancy/platform';
import { AdminAuditQuery, AuditEntryView, TenantAuditQuery } from './audit.dto';
import { AuditErrorCode as E, auditErrors } from './audit.errors';
import { AuditLog } from './audit.log';

const instant = (s?: string) => (s === undefined ? undefined : new Date(s));

/** Operators read the whole audit log, or one tenant's part of it (deleted tenants' too). */
@Controller('admin/audit')
@PlatformAdmin()
@ApiTags('admin: audit')
export class AdminAuditController {
  constructor(private readonly audit: AuditLog) {}

  @Get()
  @ApiPageResponse(AuditEntryView, 'one page of audit entries, newest first')
  @ApiErrors(auditErrors(E.invalidTimeRange))
  list(@Query() q: AdminAuditQuery): Promise<Page<AuditEntryView>> {
    return this.audit.list({ tenantId: q.tenantId?.toLowerCase(), action: q.action, from: instant(q.from), to: instant(q.to) }, q.limit, q.cursor);
  }
}

/** A tenant's owners read their own tenant's entries: what operators and members did to it. */
@Controller('audit')
@RequireRole('owner')
@ApiTags('audit')
export class TenantAuditController {
  constructor(
    private readonly audit: AuditLog,
    private readonly context: TenantContext,
  ) {}

  @Get()
  @ApiPageResponse(AuditEntryView, "one page of this tenant's audit entries, newest first")
  @ApiErrors(auditErrors(E.invalidTimeRange))
  list(@Query() q: TenantAuditQuery): Promise<Page<AuditEntryView>> {
    // The bound tenant's id, never one from the request.
    const { tenant } = this.context.requireTenant('GET /audit', 'audit entries');
    return this.audit.list({ tenantId: tenant.id, action: q.action, from: instant(q.from), to: instant(q.to) }, q.limit, q.cursor);
  }
}
